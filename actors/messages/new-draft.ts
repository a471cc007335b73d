// A draft as the API and the admin notifications make it: sent from one of the user's identities, its
// From participant is that identity.
import { randomUUID } from "node:crypto";
import { type Identity, type Message, type Participant, SCHEMA_VERSION } from "../store/model.ts";
import { messageProtocol } from "./delivery-route.ts";
import { discussionId } from "./discussion.ts";

export interface DraftFields {
  subject?: string;
  body_plain?: string;
  body_html?: string;
  participants?: { type: "To" | "Cc" | "Bcc"; address: string; label?: string }[];
  parent_id?: string | null;
  /** Refuse to send it unless it goes encrypted (actors/mail/draft-privacy.ts). */
  require_encryption?: boolean;
}

export function draftParticipants(identity: Identity, recipients: DraftFields["participants"] = []): Participant[] {
  const protocol = messageProtocol(identity);
  const from: Participant = { type: "From", address: identity.identifier, label: identity.display_name, protocol, contact_ids: [] };
  return [from, ...recipients.map((r) => ({ type: r.type, address: r.address.trim().toLowerCase(), label: r.label ?? "", protocol, contact_ids: [] }))];
}

export function newDraft(identity: Identity, fields: DraftFields, now: Date = new Date()): Message {
  const participants = draftParticipants(identity, fields.participants);
  return {
    schema: SCHEMA_VERSION,
    user_id: identity.user_id,
    message_id: randomUUID(),
    discussion_id: discussionId(participants),
    raw_msg_id: null,
    subject: fields.subject ?? "",
    body_plain: fields.body_plain ?? "",
    body_html: fields.body_html ?? "",
    date: now.toISOString(),
    date_insert: now.toISOString(),
    is_draft: true,
    is_unread: false,
    is_received: false,
    is_answered: false,
    participants,
    external_references: { message_id: "", parent_id: "", ancestors_ids: [] },
    attachments: [],
    tags: [],
    protocol: messageProtocol(identity),
    user_identities: [identity.identity_id],
    parent_id: fields.parent_id ?? null,
    ...(fields.require_encryption === true && { require_encryption: true }),
  };
}
