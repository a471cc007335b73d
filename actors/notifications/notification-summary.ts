// What a notification says of one message: its ids, the identity that received or sent it, and a short
// summary a client can show at once (sender, subject, the start of the body), each cut to a bounded
// length. The body is the sender's text: control and bidirectional-override characters are dropped, and
// an encrypted message shows no excerpt (its plain body is the armored ciphertext, or what decryption
// gave this node, which must not travel further than the message itself).

import { MAX_SUMMARY_CHARS, type NotificationElement } from "../../contract/events-table.ts";
import { cut } from "../mail/message-budget.ts";
import type { Message } from "../store/model.ts";

/** The element of a notification for this message, as received or sent by `identityId`. */
export function notificationElement(message: Message, identityId: string): NotificationElement {
  const from = senderOf(message);
  const subject = shown(message.subject);
  const excerpt = isEncrypted(message) ? "" : shown(message.body_plain.slice(0, MAX_SUMMARY_CHARS * 8));
  return {
    message_id: message.message_id,
    discussion_id: message.discussion_id,
    identity_id: identityId,
    protocol: cut(message.protocol, 16),
    is_received: message.is_received,
    is_unread: message.is_unread,
    date: cut(message.date, 40),
    ...(from !== "" && { from }),
    ...(subject !== "" && { subject }),
    ...(excerpt !== "" && { excerpt }),
  };
}

function senderOf(message: Message): string {
  const sender = message.participants.find((participant) => participant.type === "From");
  if (sender === undefined) return "";
  const label = shown(sender.label);
  return shown(label === "" ? sender.address : `${label} <${sender.address}>`);
}

/** Controls, format characters that reorder text (bidi overrides) and runs of blanks become one space; cut. */
function shown(text: string): string {
  const clean = text
    .replace(/[\p{Cc}\u200E\u200F\u202A-\u202E\u2066-\u2069]+/gu, " ")
    .replace(/\s+/g, " ")
    .trim();
  return cut(clean, MAX_SUMMARY_CHARS).trimEnd();
}

function isEncrypted(message: Message): boolean {
  // An armored message opens the body (PGP/MIME's part kept as the body, or inline PGP): no need to read it all.
  return message.is_encrypted === true || message.pgp?.encrypted === true || message.body_plain.slice(0, 1024).includes("-----BEGIN PGP MESSAGE-----");
}
