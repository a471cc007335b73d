// Files attached to a draft: each uploaded one is stored by itself (a raw of its own) and listed in the
// draft's `attachments` with its id, name, type and size. Together they must leave the mail that
// carries them within the platform's size limit once base64 makes them a third larger.
import { mediaTypeOrBytes } from "../mail/mail-attachment.ts";
import { cut, MAX_CONTENT_TYPE_CHARS, MAX_FILE_NAME_CHARS } from "../mail/message-budget.ts";
import type { AttachmentInfo } from "../store/model.ts";

/** Files one draft carries at most. */
export const MAX_DRAFT_ATTACHMENTS = 100;
/** Room kept in the mail for its headers and bodies. */
const MAIL_OVERHEAD_BYTES = 256 * 1024;

/** The bytes a draft's attachments may total, for mail of at most `maxMailBytes` (CALIOPEN_SMTP_MAX_SIZE). */
export function attachmentBudget(maxMailBytes: number): number {
  return Math.max(0, Math.floor(((maxMailBytes - MAIL_OVERHEAD_BYTES) * 3) / 4));
}

/** The bytes already attached. */
export function attachedBytes(attachments: AttachmentInfo[]): number {
  return attachments.reduce((total, attachment) => total + attachment.size, 0);
}

/** An id no attachment of the draft has had: one past the highest (ids are never reused). */
export function nextAttachmentId(attachments: AttachmentInfo[]): string {
  const highest = attachments.reduce((most, attachment, index) => Math.max(most, Number(attachment.attachment_id ?? index)), -1);
  return String(highest + 1);
}

/** The attachment a draft lists for an uploaded file. */
export function uploadedAttachment(id: string, upload: { fileName: string; contentType: string; size: number; rawId: string }): AttachmentInfo {
  // Control characters would break the headers the name ends up in; the name is the user's, not a path.
  const name = upload.fileName
    .replace(/[\p{Cc}]/gu, "")
    .replace(/^.*[\\/]/, "")
    .trim();
  return {
    attachment_id: id,
    content_type: cut(mediaTypeOrBytes(upload.contentType), MAX_CONTENT_TYPE_CHARS),
    file_name: cut(name === "" ? `attachment-${id}` : name, MAX_FILE_NAME_CHARS),
    size: upload.size,
    is_inline: false,
    content_raw_id: upload.rawId,
  };
}
