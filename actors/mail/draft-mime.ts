// The MIME of a draft about to be sent (docs/decisions.md §4 smtp-bridge): From is the identity it is sent
// from; To, Cc and Reply-To come from its participants; Bcc recipients get the message through the SMTP
// envelope only and never appear in a header; the Message-ID is on the platform's mail host; a reply
// carries In-Reply-To / References built from the parent's external references. Files uploaded to the
// draft go with it (multipart/mixed), read from the store as the message is built.
import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import MailComposer from "nodemailer/lib/mail-composer";
import type { AttachmentInfo, Identity, Message, Participant } from "../store/model.ts";

export interface DraftMime {
  /** The RFC 5322 message, exactly the bytes to send and to keep as the sent raw message. */
  raw: Buffer;
  /** The Message-ID without angle brackets, as kept in `external_references.message_id`. */
  messageId: string;
  /** MAIL FROM and RCPT TO: the identity's address; every To, Cc and Bcc address once. */
  envelope: { from: string; to: string[] };
  /** In-Reply-To (without brackets), "" when the draft replies to nothing with a Message-ID. */
  inReplyTo: string;
  /** References, oldest first, without brackets. */
  references: string[];
  /** The Date header. */
  date: Date;
}

export interface DraftMimeOptions {
  /** The platform's mail host: the right-hand side of the Message-ID. */
  host: string;
  /** The Date header; now by default. */
  date?: Date;
  /** The content of a file uploaded to the draft (null: it is gone, and the send fails). */
  openAttachment?(attachment: AttachmentInfo): Promise<Readable | null>;
  /** Force this transfer encoding on the text bodies (a signed mail must stay byte for byte the same on the way). */
  bodyEncoding?: "quoted-printable";
}

/** Strips the angle brackets and blanks of a stored Message-ID (stored ids may carry them or not). */
export function bareMessageId(id: string | null | undefined): string {
  return (id ?? "").trim().replace(/^<+/, "").replace(/>+$/, "").trim();
}

/**
 * The Message-ID of a draft: a UUID derived from (user, message), so a draft sent again after a failed or
 * unanswered attempt keeps its Message-ID, and a recipient that got both copies can tell they are one
 * message. It reveals nothing of the internal ids (a hash, like the original's).
 */
export function draftMessageId(draft: Pick<Message, "user_id" | "message_id">, host: string): string {
  const hex = createHash("sha256").update(`caliopen-message-id\n${draft.user_id}\n${draft.message_id}`).digest("hex");
  // RFC 9562 layout, version 8 (custom), variant 10.
  const variant = ((parseInt(hex.slice(16, 17), 16) & 0x3) | 0x8).toString(16);
  const uuid = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
  return `${uuid}@${host}`;
}

/**
 * Threading of a reply (RFC 5322 §3.6.4): In-Reply-To is the parent's Message-ID; References are the
 * parent's References (else its In-Reply-To) followed by the parent's Message-ID.
 */
export function replyThreading(parent: Message | null): { inReplyTo: string; references: string[] } {
  const parentId = bareMessageId(parent?.external_references.message_id);
  if (parent === null || parentId === "") return { inReplyTo: "", references: [] };
  const ancestors = parent.external_references.ancestors_ids.map(bareMessageId).filter((id) => id !== "");
  const before = ancestors.length > 0 ? ancestors : [bareMessageId(parent.external_references.parent_id)].filter((id) => id !== "");
  return { inReplyTo: parentId, references: [...new Set([...before, parentId])] };
}

const recipientTypes = new Set<Participant["type"]>(["To", "Cc", "Bcc"]);

export function draftRecipients(draft: Pick<Message, "participants">): string[] {
  return [...new Set(draft.participants.filter((p) => recipientTypes.has(p.type)).map((p) => p.address.trim().toLowerCase()))].filter((a) => a !== "");
}

export async function buildDraftMime(draft: Message, from: Identity, parent: Message | null, options: DraftMimeOptions): Promise<DraftMime> {
  const date = options.date ?? new Date();
  const messageId = draftMessageId(draft, options.host);
  const { inReplyTo, references } = replyThreading(parent);
  const addresses = (type: Participant["type"]) =>
    draft.participants.filter((p) => p.type === type && p.address.trim() !== "").map((p) => ({ name: p.label, address: p.address.trim() }));
  const envelope = { from: from.identifier, to: draftRecipients(draft) };

  const uploaded = draft.attachments.filter((attachment) => attachment.content_raw_id !== undefined);
  const attachments = [];
  for (const attachment of uploaded) {
    const content = (await options.openAttachment?.(attachment)) ?? null;
    if (content === null) throw new Error(`the content of attachment ${attachment.attachment_id} (${attachment.file_name}) is gone`);
    attachments.push({ filename: attachment.file_name, contentType: attachment.content_type, content });
  }

  const hasPlain = draft.body_plain !== "";
  const hasHtml = draft.body_html !== "";
  const composer = new MailComposer({
    from: { name: from.display_name, address: from.identifier },
    to: addresses("To"),
    cc: addresses("Cc"),
    replyTo: addresses("Reply-To"),
    // No `bcc`: Bcc recipients are in the envelope only.
    subject: draft.subject,
    date,
    messageId: `<${messageId}>`,
    ...(inReplyTo !== "" && { inReplyTo: `<${inReplyTo}>`, references: references.map((id) => `<${id}>`) }),
    // Both bodies: multipart/alternative (plain first, the preferred html last). Only html: a single
    // text/html part. Otherwise a single text/plain part, possibly empty.
    ...(hasPlain || !hasHtml ? { text: draft.body_plain } : {}),
    ...(hasHtml && { html: draft.body_html }),
    ...(attachments.length > 0 && { attachments }),
    envelope,
    ...(options.bodyEncoding !== undefined && { encoding: options.bodyEncoding }),
    xMailer: false,
  });
  // SMTP carries CRLF lines only, and nodemailer's transport rewrites a bare LF (a body typed with "\n")
  // into CRLF on the wire: do it here, so the bytes kept as the sent raw are the bytes sent.
  const raw = crlf(await composer.compile().build());
  return { raw, messageId, envelope, inReplyTo, references, date };
}

function crlf(bytes: Buffer): Buffer {
  return Buffer.from(bytes.toString("latin1").replace(/\r?\n/g, "\r\n"), "latin1");
}
