// How a received mail fits in its message document. A message is one KV document, which must fit in a
// NATS message (1 MiB by default, headers included) whatever the mail holds: 100,000 addresses in a To
// header, a subject of a megabyte, bodies of control characters that JSON escapes six times over. Each
// field has a limit, and a last measure of the whole document shrinks what is still too big. The raw
// keeps the whole mail; what is left out of the document is counted on it.
import type { Message } from "../store/model.ts";

/** The most a message document may take once encoded, well under NATS's 1 MiB default max_payload. */
export const MAX_DOCUMENT_BYTES = 768 * 1024;
export const MAX_SUBJECT_CHARS = 1000;
/** A participant's display name. */
export const MAX_LABEL_CHARS = 256;
/** RFC 5321 §4.5.3.1.3: a path is at most 256 octets with its angle brackets. */
export const MAX_ADDRESS_CHARS = 254;
/** RFC 5322 lines are at most 998 characters: a longer Message-ID is none. */
export const MAX_ID_CHARS = 998;
/** References keeps the nearest ancestors, the last ones. */
export const MAX_ANCESTORS = 50;
export const MAX_FILE_NAME_CHARS = 255;
export const MAX_CONTENT_TYPE_CHARS = 255;

/** At most `max` UTF-16 units of `text`, never half a surrogate pair. */
export function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  const end = isHighSurrogate(text.charCodeAt(max - 1)) ? max - 1 : max;
  return text.slice(0, end);
}

/** The size of a value once encoded as the store encodes it (JSON, UTF-8). */
export function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value), "utf8");
}

/**
 * Makes the message fit in `maxBytes` of document: cuts the HTML body, then the plain one, then drops
 * the farthest ancestors, then participants from the last (never the first From), then attachments'
 * metadata from the last, counting what it drops. Returns it unchanged when it fits.
 */
export function fitDocument(message: Message, maxBytes = MAX_DOCUMENT_BYTES): { message: Message; bodyCut: boolean } {
  // Nearly every mail is far under: said without encoding its bodies, the bulk of the document.
  if (bodiesAside(message) <= maxBytes) return { message, bodyCut: false };
  let current = message;
  let over = jsonBytes(current) - maxBytes;
  let bodyCut = false;
  for (const field of ["body_html", "body_plain"] as const) {
    if (over <= 0) break;
    const text = current[field];
    if (text === "") continue;
    current = { ...current, [field]: cutToJsonBytes(text, jsonBytes(text) - 2 - over) };
    bodyCut = true;
    over = jsonBytes(current) - maxBytes;
  }
  if (over > 0) {
    const ancestors = current.external_references.ancestors_ids;
    const drop = countToFree(ancestors, over, 0, true);
    current = { ...current, external_references: { ...current.external_references, ancestors_ids: ancestors.slice(drop) } };
    over = jsonBytes(current) - maxBytes;
  }
  if (over > 0) {
    const { participants } = current;
    const keepFirst = participants[0]?.type === "From" ? 1 : 0;
    const drop = countToFree(participants, over, keepFirst, false);
    const omitted = { ...current.participants_omitted };
    for (const dropped of participants.slice(participants.length - drop)) omitted[dropped.type] = (omitted[dropped.type] ?? 0) + 1;
    current = { ...current, participants: participants.slice(0, participants.length - drop), ...(drop > 0 && { participants_omitted: omitted }) };
    over = jsonBytes(current) - maxBytes;
  }
  if (over > 0) {
    const { attachments } = current;
    const drop = countToFree(attachments, over, 0, false);
    current = {
      ...current,
      attachments: attachments.slice(0, attachments.length - drop),
      ...(drop > 0 && { attachments_omitted: (current.attachments_omitted ?? 0) + drop }),
    };
  }
  return { message: current, bodyCut };
}

/**
 * At most the size of the message's document: the rest encoded, and each body at its worst, every
 * UTF-16 unit escaped as `\uXXXX` (6 bytes).
 */
function bodiesAside(message: Message): number {
  return jsonBytes({ ...message, body_plain: "", body_html: "" }) + 6 * (message.body_plain.length + message.body_html.length);
}

/** How many items to drop (from the front or the back, sparing `spare` at the front) to free `bytes`. */
function countToFree(items: readonly unknown[], bytes: number, spare: number, fromFront: boolean): number {
  let freed = 0;
  let count = 0;
  const droppable = items.length - spare;
  while (freed < bytes && count < droppable) {
    const item = fromFront ? items[count] : items[items.length - 1 - count];
    freed += jsonBytes(item) + 1; // and its comma
    count++;
  }
  return count;
}

/** The longest start of `text` whose JSON encoding (without quotes) takes at most `budget` bytes. */
function cutToJsonBytes(text: string, budget: number): string {
  let used = 0;
  let i = 0;
  while (i < text.length) {
    const code = text.charCodeAt(i);
    const pair = isHighSurrogate(code) && isLowSurrogate(text.charCodeAt(i + 1));
    const size = pair ? 4 : escapedSize(code);
    if (used + size > budget) break;
    used += size;
    i += pair ? 2 : 1;
  }
  return text.slice(0, i);
}

/** Bytes of one UTF-16 unit (not part of a pair) in JSON.stringify's UTF-8 output. */
function escapedSize(code: number): number {
  if (code === 0x22 || code === 0x5c || code === 0x08 || code === 0x09 || code === 0x0a || code === 0x0c || code === 0x0d) return 2;
  if (code < 0x20) return 6;
  if (code < 0x80) return 1;
  if (code < 0x800) return 2;
  // A lone surrogate is written as \udxxx.
  if (code >= 0xd800 && code <= 0xdfff) return 6;
  return 3;
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}
