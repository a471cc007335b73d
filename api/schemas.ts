// JSON schemas of the API: they validate requests (a bad field is a 400 naming it) and are the source
// of the OpenAPI document.

import { MAX_SCHEDULE_CHARS } from "../actors/identities/poll-schedule.ts";
import { MAX_FOLDER_PATH_BYTES, MAX_SELECTION_ENTRIES } from "../actors/imap/account-folders.ts";
import { PROVIDER_NAME } from "../actors/oauth2/oauth2-providers.ts";
import { MAX_TOKEN_CHARS } from "../actors/oauth2/token-endpoint.ts";
import { MAX_CURSOR_CHARS } from "../actors/store/paging.ts";
import { MAX_NOTIFICATION_ELEMENTS, NOTIFICATION_ELEMENT_FIELDS, NOTIFICATION_FIELDS } from "../contract/events-table.ts";
import type { PayloadSchema } from "../runtime/payload-schema.ts";

export const uuid = { type: "string", pattern: "^[0-9a-fA-F-]{36}$" } as const;

export const decimalMinutes = { type: "string", pattern: "^[0-9]+(\\.[0-9]+)?$", description: "minutes, a decimal string" } as const;
export const hostPort = { type: "string", pattern: "^[^\\s:/]+:[0-9]{1,5}$", description: "host:port" } as const;
export const email = { type: "string", pattern: "^[^\\s@]+@[^\\s@]+$", maxLength: 320 } as const;
const text = (maxLength: number) => ({ type: "string", maxLength }) as const;

export const errorSchema = {
  $id: "Error",
  type: "object",
  required: ["error", "message"],
  properties: { error: { type: "string" }, message: { type: "string" }, field: { type: "string" } },
} as const;

export const pageQuery = {
  type: "object",
  additionalProperties: false,
  properties: {
    offset: {
      type: "integer",
      minimum: 0,
      default: 0,
      description: "entries to pass over (after `after` when given); a deep offset costs what it passes over, `after` does not",
    },
    limit: { type: "integer", minimum: 1, maximum: 500, default: 50 },
    after: {
      type: "string",
      minLength: 1,
      maxLength: MAX_CURSOR_CHARS,
      pattern: "^[A-Za-z0-9_-]+$",
      description: "the `next` of the previous page: this page starts after it, at the cost of a first page",
    },
  },
} as const;

const oauthToken = { type: "string", minLength: 1, maxLength: MAX_TOKEN_CHARS, pattern: "^[\\x21-\\x7e]+$" } as const;

const oauth2Grant = {
  type: "object",
  description: "an OAuth 2.0 grant for a mail account (XOAUTH2 on IMAP and SMTP), refreshed by the platform before it expires",
  additionalProperties: false,
  required: ["provider", "access_token", "refresh_token"],
  properties: {
    provider: { type: "string", pattern: PROVIDER_NAME.source, description: "one of the operator's providers (CALIOPEN_OAUTH2_PROVIDERS)" },
    access_token: oauthToken,
    refresh_token: oauthToken,
    expires_at: {
      type: ["string", "null"],
      pattern: "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?(Z|[+-]\\d{2}:\\d{2})$",
      description: "when the access token expires (RFC 3339); null or absent: refreshed only when a server refuses it",
    },
  },
} as const;

const credentials = {
  type: "object",
  description:
    "secrets to log in with: username/password for mail, or `oauth2` (and optionally `username`, the address by default); OAuth tokens for Twitter. Stored encrypted, never returned. An account created without them waits (needsCredentials) until they are given, or granted through its provider's consent page (AuthorizeUserIdentity)",
  minProperties: 1,
  maxProperties: 16,
  properties: { oauth2: oauth2Grant },
  additionalProperties: { type: "string", maxLength: 4096 },
} as const;

const folderEntry = { type: "string", minLength: 1, maxLength: MAX_FOLDER_PATH_BYTES } as const;

const identityInfosInput = {
  type: "object",
  additionalProperties: false,
  properties: {
    inserver: hostPort,
    outserver: hostPort,
    poll_interval: decimalMinutes,
    poll_schedule: {
      type: ["string", "null"],
      maxLength: MAX_SCHEDULE_CHARS,
      description:
        "when to poll instead of every poll_interval: a cron pattern in UTC (`*/15 7-20 * * 1-5`: every 15 minutes from 7:00 to 20:45 on weekdays; 6 fields: seconds first); null or empty: every poll_interval",
    },
    mailboxes: {
      type: ["object", "null"],
      additionalProperties: false,
      description:
        "which IMAP folders are synced besides INBOX (always synced): `include` (absent or null: every folder) and `exclude`, each entry a folder path (its subfolders too) or a special-use attribute such as `\\Sent`; null or `{}`: every folder but `\\Trash`, `\\Junk` and `\\All`",
      properties: {
        include: { type: ["array", "null"], maxItems: MAX_SELECTION_ENTRIES, items: folderEntry },
        exclude: { type: "array", maxItems: MAX_SELECTION_ENTRIES, items: folderEntry },
      },
    },
  },
} as const;

export const identitySchema = {
  $id: "Identity",
  type: "object",
  additionalProperties: true,
  properties: {
    identity_id: { type: "string" },
    user_id: { type: "string" },
    type: { type: "string", enum: ["local", "remote"] },
    protocol: { type: "string" },
    identifier: { type: "string" },
    display_name: { type: "string" },
    status: { type: "string" },
    has_credentials: { type: "boolean" },
    infos: {
      type: "object",
      description: "servers, poll interval, and sync status: last_poll, next_poll, last_sync, last_error",
      additionalProperties: true,
    },
    date_insert: { type: "string" },
    date_update: { type: "string" },
  },
} as const;

export const createIdentityBody = {
  type: "object",
  additionalProperties: false,
  required: ["protocol", "identifier"],
  properties: {
    protocol: { type: "string", enum: ["email", "imap", "twitter"] },
    identifier: { type: "string", minLength: 1, maxLength: 320 },
    display_name: text(200),
    status: { type: "string", enum: ["active", "inactive"] },
    credentials,
    infos: identityInfosInput,
  },
} as const;

export const patchIdentityBody = {
  type: "object",
  additionalProperties: false,
  minProperties: 1,
  properties: { display_name: text(200), status: { type: "string", enum: ["active", "inactive"] }, credentials, infos: identityInfosInput },
} as const;

const contactEmail = {
  type: "object",
  additionalProperties: false,
  required: ["address"],
  properties: { address: email, label: text(200), type: text(40), is_primary: { type: "boolean" } },
} as const;

const socialIdentity = {
  type: "object",
  additionalProperties: false,
  required: ["type", "name"],
  properties: { type: { type: "string", minLength: 1, maxLength: 40 }, name: { type: "string", minLength: 1, maxLength: 320 } },
} as const;

const contactFields = {
  title: text(400),
  given_name: text(200),
  family_name: text(200),
  emails: { type: "array", maxItems: 100, items: contactEmail },
  identities: { type: "array", maxItems: 100, items: socialIdentity },
} as const;

export const createContactBody = { type: "object", additionalProperties: false, minProperties: 1, properties: contactFields } as const;
export const patchContactBody = { type: "object", additionalProperties: false, minProperties: 1, properties: contactFields } as const;

export const contactSchema = {
  $id: "Contact",
  type: "object",
  additionalProperties: true,
  properties: {
    contact_id: { type: "string" },
    user_id: { type: "string" },
    title: { type: "string" },
    given_name: { type: "string" },
    family_name: { type: "string" },
    emails: { type: "array", items: { type: "object", additionalProperties: true } },
    identities: { type: "array", items: { type: "object", additionalProperties: true } },
    derived: { type: ["object", "null"], additionalProperties: true },
    date_insert: { type: "string" },
    date_update: { type: "string" },
  },
} as const;

export const createKeyBody = {
  type: "object",
  additionalProperties: false,
  required: ["key"],
  properties: { key: { type: "string", minLength: 1, maxLength: 200_000, description: "one ASCII-armored OpenPGP public key" }, label: text(200) },
} as const;

export const publicKeySchema = {
  $id: "PublicKey",
  type: "object",
  additionalProperties: true,
  properties: {
    key_id: { type: "string" },
    resource_id: { type: "string" },
    user_id: { type: "string" },
    fingerprint: { type: "string" },
    armored: { type: "string" },
    expire_date: { type: ["string", "null"] },
    label: { type: "string" },
    size: { type: "integer" },
    algorithm: { type: "string" },
    emails: { type: "array", items: { type: "string" } },
    source: { type: "string" },
    date_insert: { type: "string" },
  },
} as const;

const requireEncryption = {
  type: "boolean",
  description: "mail drafts: refuse to send unless every recipient has a usable key, so that the mail goes encrypted (see `privacy`)",
} as const;

const draftParticipant = {
  type: "object",
  additionalProperties: false,
  required: ["type", "address"],
  properties: { type: { type: "string", enum: ["To", "Cc", "Bcc"] }, address: { type: "string", minLength: 1, maxLength: 320 }, label: text(200) },
} as const;

export const createDraftBody = {
  type: "object",
  additionalProperties: false,
  required: ["identity_id"],
  properties: {
    identity_id: { type: "string", minLength: 1, maxLength: 64, description: "the identity the draft is sent from" },
    subject: text(2_000),
    body_plain: text(5_000_000),
    body_html: text(5_000_000),
    participants: { type: "array", maxItems: 500, items: draftParticipant },
    parent_id: { type: "string", minLength: 1, maxLength: 64, description: "the message this draft replies to" },
    require_encryption: requireEncryption,
  },
} as const;

/** Tags a message may carry, and their length. */
export const MAX_TAGS = 100;
export const MAX_TAG_CHARS = 100;

export const patchMessageBody = {
  type: "object",
  additionalProperties: false,
  minProperties: 1,
  properties: {
    subject: { ...text(2_000), description: "drafts only" },
    body_plain: { ...text(5_000_000), description: "drafts only" },
    body_html: { ...text(5_000_000), description: "drafts only" },
    participants: { type: "array", maxItems: 500, items: draftParticipant, description: "drafts only" },
    require_encryption: { ...requireEncryption, description: `drafts only: ${requireEncryption.description}` },
    is_unread: { type: "boolean", description: "read or not; on a synced message, carried to its account's server (\\Seen)" },
    is_flagged: { type: "boolean", description: "flagged or not (the tag `flagged` follows); carried to the server (\\Flagged)" },
    tags: {
      type: "array",
      maxItems: MAX_TAGS,
      uniqueItems: true,
      items: { type: "string", minLength: 1, maxLength: MAX_TAG_CHARS },
      description: "the message's tags, all of them; those that can be IMAP keywords are carried to the server",
    },
  },
} as const;

export const messageActionsBody = {
  type: "object",
  additionalProperties: false,
  required: ["actions"],
  properties: { actions: { type: "array", minItems: 1, maxItems: 1, items: { type: "string", enum: ["send"] } } },
} as const;

export const messageSchema = {
  $id: "Message",
  type: "object",
  additionalProperties: true,
  properties: {
    message_id: { type: "string" },
    discussion_id: { type: "string" },
    subject: { type: "string" },
    body_plain: { type: "string" },
    body_html: { type: "string" },
    date: { type: "string" },
    is_draft: { type: "boolean" },
    is_unread: { type: "boolean" },
    is_flagged: { type: "boolean", description: "flagged (\\Flagged on its server for a synced message); absent on messages stored before it was kept" },
    tags: { type: "array", items: { type: "string" } },
    locations: {
      type: "array",
      description: "for mail synced from the user's accounts: each folder it is in there (one message however many folders hold it)",
      items: {
        type: "object",
        additionalProperties: true,
        properties: {
          identity_id: { type: "string" },
          mailbox: { type: "string", description: "the folder's path when the mail was fetched from it" },
          uid: { type: ["integer", "null"] },
        },
      },
    },
    participants: { type: "array", items: { type: "object", additionalProperties: true } },
    user_identities: { type: "array", items: { type: "string" } },
    message_id_conflicts: {
      type: "array",
      description:
        "received mails that came under this message's Message-ID with a different content (one message per Message-ID): each raw is kept, one entry per content and receiving identity, at most 20",
      items: {
        type: "object",
        properties: {
          raw_id: { type: "string", description: "the conflicting copy's raw message, kept whole" },
          content_sha256: { type: "string", description: "sha256 of that raw after its leading trace fields (Received, ...)" },
          identity_id: { type: "string", description: "the identity that received it" },
          received_at: { type: "string", description: "when it was received (ISO date)" },
        },
      },
    },
    message_id_conflicts_omitted: { type: "integer", description: "conflicting copies that came once message_id_conflicts was full (their raws are kept)" },
    require_encryption: requireEncryption,
    privacy: {
      type: "object",
      additionalProperties: true,
      description:
        "a mail draft read alone (GetMessage, CreateDraft, PatchMessage): what sending will do. `mode` `encrypted` (every recipient has a usable key), `signed` (in clear, signed with your stored private key) or `clear`; `reason`; `refused` when require_encryption stops it; each recipient's key ids or `problem`",
      properties: {
        mode: { type: "string", enum: ["encrypted", "signed", "clear"] },
        reason: { type: "string" },
        require_encryption: { type: "boolean" },
        refused: { type: "boolean" },
        signing_key: { type: ["object", "null"], additionalProperties: true },
        recipients: { type: "array", items: { type: "object", additionalProperties: true } },
        own_copy: { type: "string", enum: ["private_key", "own_contact_keys", "none"] },
      },
    },
    is_encrypted: { type: "boolean", description: "PGP/MIME encrypted (received as multipart/encrypted, or sent encrypted)" },
    pgp: {
      type: "object",
      additionalProperties: true,
      description: "PGP/MIME seen on the mail: encrypted, signed, signer_key_id; for received signed mail `signature` (its check against your contacts' keys)",
      properties: {
        encrypted: { type: "boolean" },
        signed: { type: "boolean" },
        signer_key_id: { type: ["string", "null"] },
        signer_fingerprint: { type: "string" },
        signature: { type: "string", enum: ["verified", "invalid", "unknown_key", "not_checked"] },
        signature_note: { type: "string" },
        encrypted_to: { type: "array", items: { type: "string" } },
      },
    },
    participants_omitted: {
      type: "object",
      additionalProperties: { type: "integer" },
      description: "addresses left out of participants, by header (From, To, Cc, ...): past the per-header limit or the document size; the raw keeps them",
    },
    attachments: {
      type: "array",
      items: {
        type: "object",
        additionalProperties: true,
        properties: {
          attachment_id: { type: "string", description: "GET /api/v2/messages/{message_id}/attachments/{attachment_id} streams it" },
          content_type: { type: "string" },
          file_name: { type: "string" },
          size: { type: "integer", description: "decoded bytes" },
          is_inline: { type: "boolean" },
        },
      },
    },
    attachments_omitted: {
      type: "integer",
      description:
        "attachments left out of attachments to keep the document within its size (still in the raw, with the attachment_ids that follow the last one listed)",
    },
  },
} as const;

export const notifyBody = {
  type: "object",
  additionalProperties: false,
  required: ["subject", "body"],
  properties: { subject: { type: "string", minLength: 1, maxLength: 2_000 }, body: { type: "string", minLength: 1, maxLength: 1_000_000 } },
} as const;

export const page = (itemRef: string) =>
  ({
    type: "object",
    properties: {
      items: { type: "array", items: { $ref: `${itemRef}#` } },
      total: { type: "integer" },
      offset: { type: "integer" },
      limit: { type: "integer" },
      next: { type: ["string", "null"], description: "`after` for the page after this one; null when this one is the last" },
    },
  }) as const;

export const discussionSchema = {
  $id: "Discussion",
  type: "object",
  properties: {
    discussion_id: { type: "string" },
    date: { type: "string", description: "when its newest message was written or received" },
    last_message: { $ref: "Message#" },
    participants: { type: "array", items: { type: "object", additionalProperties: true }, description: "the newest message's participants" },
    total_count: { type: "integer" },
    unread_count: { type: "integer" },
  },
} as const;

/** A route's `{message_id}`. */
export const messageParams = { type: "object", required: ["message_id"], properties: { message_id: uuid } } as const;

/** A route's `{message_id}` and `{attachment_id}` (its number among the message's attachments). */
export const attachmentParams = {
  type: "object",
  required: ["message_id", "attachment_id"],
  properties: { message_id: uuid, attachment_id: { type: "string", pattern: "^(0|[1-9][0-9]{0,3})$", description: "an attachment_id of the message" } },
} as const;

/** A notification (contract/events-table.ts) as the API shows it: with its stream sequence. */
export const notificationSchema = {
  $id: "Notification",
  type: "object",
  properties: {
    seq: { type: "integer", description: "its place in the history: the event stream's `id`, and what `since` and `before` take" },
    ...jsonSchemaOf(NOTIFICATION_FIELDS),
    elements: {
      type: "array",
      maxItems: MAX_NOTIFICATION_ELEMENTS,
      description: `one entry per message, when \`size\` is at most ${MAX_NOTIFICATION_ELEMENTS}`,
      items: { type: "object", properties: jsonSchemaOf(NOTIFICATION_ELEMENT_FIELDS) },
    },
  },
} as const;

/** The JSON schema properties of a contract payload's fields. */
function jsonSchemaOf(fields: PayloadSchema): Record<string, Record<string, unknown>> {
  const properties: Record<string, Record<string, unknown>> = {};
  for (const [name, field] of Object.entries(fields)) {
    properties[name] = {
      type: field.type === "number" ? "integer" : field.type === "decimal" ? "string" : field.type,
      ...(field.description !== undefined && { description: field.description }),
      ...(field.enum !== undefined && { enum: [...field.enum] }),
    };
  }
  return properties;
}

export const SHARED_SCHEMAS = [errorSchema, identitySchema, contactSchema, publicKeySchema, messageSchema, discussionSchema, notificationSchema];
