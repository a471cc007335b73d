// The objects Caliopen keeps (docs/decisions.md §5), as the services read and write them. Every stored object
// carries `schema`, the version of its shape, so a later release can read what an earlier one wrote.

export const SCHEMA_VERSION = 1;

export interface User {
  schema: number;
  user_id: string;
  name: string;
  recovery_email: string | null;
  /** The user's own contact card. */
  contact_id: string;
  admin: boolean;
  date_insert: string;
  /** When an operator disabled the user (the API then refuses their tokens); null or absent when enabled. */
  disabled_at?: string | null;
}

/**
 * An API bearer token. Its secret is shown once, when it is made, and never stored: the `apitoken.<hash>`
 * lookup leads from the secret's hash to this document. `token_id` is public (listings, revoking).
 */
export interface ApiToken {
  schema: number;
  /** `tok_` and 16 hex digits; never enough to authenticate. */
  token_id: string;
  user_id: string;
  /** `hashed(secret)`, to find and drop its lookup. */
  secret_hash: string;
  date_insert: string;
  /** Null: never expires (`--expires never`, or a token made before tokens had ids). */
  expires_at: string | null;
  /** Written at most once a minute (see TokenStore.touch). */
  last_used: string | null;
  revoked_at: string | null;
  /** Made before tokens had ids, and migrated into this form. */
  legacy: boolean;
}

export type IdentityType = "local" | "remote";
export type IdentityProtocol = "email" | "imap" | "smtp" | "twitter";
export type IdentityStatus = "active" | "inactive" | "deleted";

/** Where a remote identity is synced from and how it is doing; written by the API, the poller and the bridges. */
export interface IdentityInfos {
  /** IMAP server, `host:port`. */
  inserver?: string;
  /** SMTP server, `host:port`. */
  outserver?: string;
  /** Minutes between two polls, a decimal string as on the wire (`"15"`). */
  poll_interval?: string;
  /** When to poll instead, as a cron pattern in UTC (`0,30 7-20 * * 1-5`); null or absent: every poll_interval. */
  poll_schedule?: string | null;
  last_poll?: string | null;
  next_poll?: string | null;
  last_sync?: string | null;
  last_error?: { message: string; at: string } | null;
  /** Which IMAP folders are synced (actors/imap/account-folders.ts); null or absent: the default. */
  mailboxes?: { include?: string[] | null; exclude?: string[] } | null;
  /** Protocol-specific sync state (e.g. IMAP `lastseenuid`), owned by the bridge. */
  [field: string]: unknown;
}

/** An identity as every service sees it: the credentials are never part of it (see `IdentityStore.credentials`). */
export interface Identity {
  schema: number;
  user_id: string;
  identity_id: string;
  type: IdentityType;
  protocol: IdentityProtocol;
  /** Lower-cased address or screen name. */
  identifier: string;
  display_name: string;
  status: IdentityStatus;
  infos: IdentityInfos;
  /** Whether credentials are stored for it (they themselves are sealed). */
  has_credentials: boolean;
  date_insert: string;
  date_update: string;
}

/** Secrets of a remote identity: `username`/`password` for mail, OAuth tokens for Twitter; or an OAuth 2.0 grant for mail. */
export type Credentials = SecretFields | OAuth2Credentials;

/** Named secrets: `username`/`password` (or `inusername`, `outpassword`...) for mail, tokens for Twitter. */
export type SecretFields = Readonly<Record<string, string>>;

/** A mail account that logs in with OAuth 2.0 bearer tokens (SASL XOAUTH2); `username` defaults to the identity's address. */
export interface OAuth2Credentials {
  readonly username?: string;
  readonly oauth2: OAuth2Grant;
}

/** An OAuth 2.0 grant, kept fresh by the bridges (actors/oauth2/access-tokens.ts). */
export interface OAuth2Grant {
  /** One of the operator's providers (CALIOPEN_OAUTH2_PROVIDERS): where the refresh token is redeemed. */
  readonly provider: string;
  readonly access_token: string;
  readonly refresh_token: string;
  /** RFC 3339; null when unknown (the token is then refreshed only when a server refuses it). */
  readonly expires_at: string | null;
}

export interface RawMessage {
  schema: number;
  raw_msg_id: string;
  /** The user it was fetched or sent for; null for mail received over SMTP for several users at once. */
  user_id: string | null;
  size: number;
  /** sha256 of the bytes, hex. */
  sha256: string;
  delivered: boolean;
  date_insert: string;
}

export type ParticipantType = "From" | "To" | "Cc" | "Bcc" | "Reply-To" | "Sender";

export interface Participant {
  type: ParticipantType;
  address: string;
  label: string;
  protocol: string;
  contact_ids: string[];
}

export interface ExternalReferences {
  message_id: string;
  parent_id: string;
  ancestors_ids: string[];
}

export interface AttachmentInfo {
  /**
   * Its number among the mail's attachments, in the order of the raw ("0", "1", …): how the API
   * finds it again in the raw. Documents stored before it existed lack it: their position in
   * `attachments` is that number (see attachmentIds).
   */
  attachment_id?: string;
  content_type: string;
  file_name: string;
  size: number;
  is_inline: boolean;
  /**
   * For a file uploaded to a draft: its content, stored by itself (a draft has no raw mail yet). Kept
   * once the draft is sent.
   */
  content_raw_id?: string;
}

/** Where a mail synced from a remote account is on its server: one folder of one identity. */
export interface MessageLocation {
  identity_id: string;
  /** The folder's path on the server, as it was when the mail was fetched from it. */
  mailbox: string;
  /** The folder whatever it is renamed to (see FolderCursor.folder_id); absent on older messages. */
  folder_id?: string;
  uidvalidity?: string;
  /** Its UID in that folder, null when unknown. */
  uid: number | null;
}

export interface Message {
  schema: number;
  user_id: string;
  message_id: string;
  discussion_id: string;
  raw_msg_id: string | null;
  subject: string;
  body_plain: string;
  body_html: string;
  date: string;
  date_insert: string;
  is_draft: boolean;
  is_unread: boolean;
  /** Flagged (`\Flagged` on its server); absent on messages stored before it was kept. */
  is_flagged?: boolean;
  is_received: boolean;
  is_answered: boolean;
  participants: Participant[];
  external_references: ExternalReferences;
  attachments: AttachmentInfo[];
  tags: string[];
  protocol: string;
  /** The user's identities the message was received by or is sent from. */
  user_identities: string[];
  /** For a draft: the message it replies to. */
  parent_id: string | null;
  /**
   * For a draft: when a `deliver` began sending it (ISO date), set by compare-and-swap so that two
   * concurrent deliveries of one draft cannot both send it; null (or absent) when no send is running.
   * A mark older than a few minutes is stale (its sender died) and may be taken over.
   */
  sending_since?: string | null;
  /**
   * For received mail: the sha256 (hex) of its raw after the leading trace fields (see
   * actors/mail/mail-content-hash.ts), what tells two mails with one Message-ID apart. Absent on
   * messages stored before it was kept, on DMs and on drafts.
   */
  content_sha256?: string;
  /**
   * Received mails that came under this message's Message-ID with a different content (docs/decisions.md §4
   * keeps one message per user and Message-ID): their raws are kept and listed here, so a forged first
   * copy cannot make the genuine mail vanish unseen. One entry per content and receiving identity, at
   * most MAX_MESSAGE_ID_CONFLICTS (actors/mail/message-id-conflicts.ts). Absent when there are none.
   */
  message_id_conflicts?: MessageIdConflict[];
  /** Conflicting copies that came once `message_id_conflicts` was full (their raws are kept). */
  message_id_conflicts_omitted?: number;
  /**
   * Addresses left out of `participants`, counted by header: those past the per-header limit, too long
   * to be addresses, or dropped to keep the document within its size. The raw keeps them all. Absent
   * when none were.
   */
  participants_omitted?: Partial<Record<ParticipantType, number>>;
  /** Attachments left out of `attachments` to keep the document within its size (the raw keeps them). */
  attachments_omitted?: number;
  /**
   * For mail synced from remote accounts: the folders it is in there, one entry per identity and folder,
   * at most MAX_LOCATIONS (actors/mail/message-locations.ts). Absent on other messages.
   */
  locations?: MessageLocation[];
  /** PGP/MIME (RFC 3156): received as multipart/encrypted, or sent encrypted. Absent on clear mail. */
  is_encrypted?: boolean;
  /** What OpenPGP did to the mail: how it was sent, or what was recognised when it arrived (actors/mail/pgp-inbound.ts). */
  pgp?: MessagePgp;
  /** For a draft: refuse to send it unless it can go encrypted (actors/mail/draft-privacy.ts). */
  require_encryption?: boolean;
}

/** The outcome of checking a received signature against the user's contacts' keys. */
export type SignatureCheck = "verified" | "invalid" | "unknown_key" | "not_checked";

/** Message.pgp: PGP/MIME seen on a message. */
export interface MessagePgp {
  /** multipart/encrypted. */
  encrypted: boolean;
  /** multipart/signed, or signed inside the encryption (sent mail; a received encrypted mail's signature is hidden in it). */
  signed: boolean;
  /** Long key id (16 hex digits, upper case) of the key that made the signature; null when unknown. */
  signer_key_id: string | null;
  /** Fingerprint of the primary key that verified the signature (a contact's key, or the user's own). */
  signer_fingerprint?: string;
  /** Received signed mail: whether the signature verified against the keys of the sender's contact. */
  signature?: SignatureCheck;
  /** Why the signature is invalid or was not checked. */
  signature_note?: string;
  /** Received encrypted mail: the key ids it is encrypted to (16 hex digits, upper case). */
  encrypted_to?: string[];
}

/** A received mail kept as a conflicting copy of a message (see Message.message_id_conflicts). */
export interface MessageIdConflict {
  /** Its raw message, kept whole. */
  raw_id: string;
  /** Its content hash (see Message.content_sha256). */
  content_sha256: string;
  /** The identity that received it. */
  identity_id: string;
  /** When its raw was stored (ISO date). */
  received_at: string;
}

export interface ContactEmail {
  address: string;
  label: string;
  type: string;
  is_primary: boolean;
}

export interface SocialIdentity {
  type: string;
  name: string;
}

/** What ContactAction computes from the stored messages and keys. */
export interface ContactDerived {
  messages_by_address: Record<string, number>;
  best_key_size: number;
  privacy_score: number;
  computed_at: string;
}

/** Where discovery looks for keys: an HKP key server, a Web Key Directory, DNS OPENPGPKEY (RFC 7929). */
export type KeyDiscoverySource = "hkp" | "wkd" | "dns";

/** What a key discovery did for a contact. */
export interface KeyDiscoveryRecord {
  /** When it ran (ISO date). */
  at: string;
  /** Fingerprints of the keys it stored. */
  found: string[];
  /** Keys it found but did not store, and why (expired, revoked, unreadable, not naming the address, already known). */
  skipped: { fingerprint?: string; source: KeyDiscoverySource; address: string; reason: string }[];
  /** Sources that failed (unreachable, timed out, a bad answer); the other sources were still asked. */
  errors: { source: KeyDiscoverySource; address: string; message: string }[];
}

export interface Contact {
  schema: number;
  user_id: string;
  contact_id: string;
  title: string;
  given_name: string;
  family_name: string;
  emails: ContactEmail[];
  identities: SocialIdentity[];
  derived: ContactDerived | null;
  /**
   * The outcome of the last key discovery (KeyAction `discover_key`) for this contact, kept so that what
   * it stored, what it passed over and which sources failed can be seen; null or absent when none ran.
   */
  key_discovery?: KeyDiscoveryRecord | null;
  date_insert: string;
  date_update: string;
}

export interface PublicKey {
  schema: number;
  user_id: string;
  /** The contact the key belongs to. */
  resource_id: string;
  key_id: string;
  fingerprint: string;
  armored: string;
  expire_date: string | null;
  label: string;
  /** Key size in bits (for ECC keys, the curve's strength). */
  size: number;
  algorithm: string;
  emails: string[];
  /** Where it came from: "user" for an upload, "hkp" / "wkd" / "dns" for a discovery. */
  source: string;
  date_insert: string;
}

/** A page of a listing. */
export interface Page<T> {
  items: T[];
  total: number;
  offset: number;
  limit: number;
  /** A cursor for the page after this one (`after`), null when this one is the last. */
  next: string | null;
}
