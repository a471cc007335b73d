// What sending a mail draft will do to protect it (the draft's `privacy` in the API, and the plan the SMTP
// bridge follows):
//   - `encrypted` when every recipient (To, Cc, Bcc) has a usable key (recipient-keys.ts): the mail is
//     encrypted to all of them and to the sender's own key, and signed inside when the user stored a
//     private key;
//   - `signed` when some recipient has none but the user stored a private key: the mail goes in clear,
//     signed (multipart/signed), so that anyone holding the user's public key can check it;
//   - `clear` otherwise.
// The sender's own copy is encrypted to the public part of their stored private key; without one, to the
// usable keys on their own contact card; without any, it is encrypted to the recipients only (Caliopen's
// message keeps the text; copies elsewhere, such as an IMAP Sent folder, cannot be read by the sender).
// `require_encryption` on a draft makes anything but `encrypted` a refusal to send.
import { type PrivateKey, type PublicKey, readPrivateKey } from "openpgp";
import { OPENPGP_LIMITS } from "../keys/openpgp-limits.ts";
import type { Identity, Message } from "../store/model.ts";
import type { PrivateKeyInfo } from "../store/private-keys.ts";
import type { Store } from "../store/store.ts";
import { draftRecipients } from "./draft-mime.ts";
import { KeyReader, recipientsKeys, usableKey } from "./recipient-keys.ts";

export type PrivacyMode = "encrypted" | "signed" | "clear";

/** A draft's `privacy`, as the API shows it. */
export interface DraftPrivacy {
  mode: PrivacyMode;
  /** Why, in a sentence. */
  reason: string;
  require_encryption: boolean;
  /** Sending will be refused: encryption is required and cannot be done. */
  refused: boolean;
  /** The user's private key that will sign, null when none will. */
  signing_key: { fingerprint: string; key_id: string } | null;
  /** Each recipient: the keys its mail would be encrypted to, or why it has none. */
  recipients: { address: string; key_ids: string[]; problem?: string }[];
  /** Encrypted mail: which key of the sender's own the sent copy is encrypted to (`none`: only the recipients can read it). */
  own_copy?: "private_key" | "own_contact_keys" | "none";
}

/** What the SMTP bridge does: the privacy, and the keys it needs. */
export interface PrivacyPlan {
  privacy: DraftPrivacy;
  /** Every recipient's keys and the sender's own: what an encrypted mail is encrypted to. */
  encryptionKeys: PublicKey[];
  /** The unlocked private key that signs (only when the plan was made to send). */
  signingKey: PrivateKey | null;
}

/** Addresses named in a reason, at most. */
const NAMED_IN_REASON = 5;

/** The draft's privacy, for the API: reads no secret. */
export async function draftPrivacy(store: Store, draft: Message, identity: Identity | null, now: Date = new Date()): Promise<DraftPrivacy> {
  return (await plan(store, draft, identity, now, false)).privacy;
}

/** The plan for sending the draft: the signing key unsealed and read. */
export async function planDraftPrivacy(store: Store, draft: Message, identity: Identity, now: Date = new Date()): Promise<PrivacyPlan> {
  return plan(store, draft, identity, now, true);
}

async function plan(store: Store, draft: Message, identity: Identity | null, now: Date, unlock: boolean): Promise<PrivacyPlan> {
  const required = draft.require_encryption === true;
  const clear = (reason: string): PrivacyPlan => ({
    privacy: { mode: "clear", reason, require_encryption: required, refused: required, signing_key: null, recipients: [] },
    encryptionKeys: [],
    signingKey: null,
  });
  if (identity === null) return clear("the draft's identity no longer exists");
  if (draft.protocol !== "email" || identity.protocol === "twitter") return clear("only mail is encrypted or signed");

  const addresses = draftRecipients(draft);
  const reader = new KeyReader(store, draft.user_id, now);
  const [recipients, signer] = await Promise.all([recipientsKeys(reader, addresses), signingKeyOf(store, draft.user_id, identity, now, unlock)]);
  const listed = recipients.map((r) => ({ address: r.address, key_ids: r.keys.map((k) => k.key_id), ...(r.problem !== undefined && { problem: r.problem }) }));
  const signing_key = signer === null ? null : { fingerprint: signer.info.fingerprint, key_id: signer.info.key_id };
  const missing = recipients.filter((r) => r.keys.length === 0);
  const signedBy = signer === null ? "" : `, signed with your key ${signer.info.key_id}`;

  if (addresses.length > 0 && missing.length === 0) {
    const own = await ownKeys(store, reader, draft.user_id, signer, now);
    const ownText = own.kind === "none" ? "; no key of yours is known, so your sent copy can only be read here, in Caliopen" : "";
    return {
      privacy: {
        mode: "encrypted",
        reason: `every recipient has a usable key: encrypted${signedBy}${signer === null ? " (not signed: you have stored no private key)" : ""}${ownText}`,
        require_encryption: required,
        refused: false,
        signing_key,
        recipients: listed,
        own_copy: own.kind,
      },
      encryptionKeys: distinct([...recipients.flatMap((r) => r.keys.map((k) => k.key)), ...own.keys]),
      signingKey: signer?.key ?? null,
    };
  }
  const why =
    addresses.length === 0
      ? "the draft has no recipient yet"
      : `no usable key for ${missing
          .slice(0, NAMED_IN_REASON)
          .map((r) => `${r.address} (${r.problem})`)
          .join(", ")}${missing.length > NAMED_IN_REASON ? ` and ${missing.length - NAMED_IN_REASON} more` : ""}`;
  const mode: PrivacyMode = signer === null ? "clear" : "signed";
  const outcome = required
    ? "encryption is required, so sending is refused"
    : mode === "signed"
      ? `sent in clear${signedBy}`
      : "sent in clear, unsigned (you have stored no private key)";
  return {
    privacy: {
      mode,
      reason: `${why}: ${outcome}`,
      require_encryption: required,
      refused: required,
      signing_key,
      recipients: listed,
    },
    encryptionKeys: [],
    signingKey: signer?.key ?? null,
  };
}

interface Signer {
  info: PrivateKeyInfo;
  /** Read only when unlocking. */
  key: PrivateKey | null;
}

/**
 * The user's key that signs: not expired, the newest naming the identity's address, else the newest. A
 * stored key cannot become revoked (it is stored only unrevoked and never updated), but it can expire.
 */
async function signingKeyOf(store: Store, userId: string, identity: Identity, now: Date, unlock: boolean): Promise<Signer | null> {
  const valid = (await store.privateKeys.list(userId))
    .filter((info) => info.expire_date === null || Date.parse(info.expire_date) > now.getTime())
    .sort((a, b) => b.date_insert.localeCompare(a.date_insert));
  const address = identity.identifier.toLowerCase();
  const chosen = valid.find((info) => info.emails.includes(address)) ?? valid[0];
  if (chosen === undefined) return null;
  if (!unlock) return { info: chosen, key: null };
  const armored = await store.privateKeys.unlockedKey(userId, chosen.fingerprint);
  // Deleted meanwhile: nothing signs.
  if (armored === null) return null;
  const key = await readPrivateKey({ armoredKey: armored, config: OPENPGP_LIMITS });
  return { info: chosen, key };
}

/** What the sender's own copy is encrypted to (see the file's comment). */
async function ownKeys(
  store: Store,
  reader: KeyReader,
  userId: string,
  signer: Signer | null,
  now: Date,
): Promise<{ kind: "private_key" | "own_contact_keys" | "none"; keys: PublicKey[] }> {
  if (signer !== null) {
    const usable = await usableKey({ armored: signer.info.public_key, fingerprint: signer.info.fingerprint, emails: signer.info.emails }, now);
    if (!("refused" in usable)) return { kind: "private_key", keys: [usable.key] };
  }
  const user = await store.users.get(userId);
  if (user === null) return { kind: "none", keys: [] };
  const { usable } = await reader.contactKeys(user.contact_id);
  return usable.length > 0 ? { kind: "own_contact_keys", keys: usable.map((k) => k.key) } : { kind: "none", keys: [] };
}

/** Each key once (two recipients may share a contact, the sender may write to themselves). */
function distinct(keys: PublicKey[]): PublicKey[] {
  return [...new Map(keys.map((key) => [key.getFingerprint(), key])).values()];
}
