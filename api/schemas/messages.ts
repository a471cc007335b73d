// JSON schemas of messages: drafts (creating, patching, sending), flags and tags, the route parameters
// naming a message or its attachment, and the Message the API returns.

import { text, uuid } from "./common.ts";

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

/** A route's `{message_id}`. */
export const messageParams = { type: "object", required: ["message_id"], properties: { message_id: uuid } } as const;

/** A route's `{message_id}` and `{attachment_id}` (its number among the message's attachments). */
export const attachmentParams = {
  type: "object",
  required: ["message_id", "attachment_id"],
  properties: { message_id: uuid, attachment_id: { type: "string", pattern: "^(0|[1-9][0-9]{0,3})$", description: "an attachment_id of the message" } },
} as const;
