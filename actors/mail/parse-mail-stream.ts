// A mail parsed as it streams in (mailparser): its head as soon as the headers are read, then its
// bodies, the metadata of its attachments (counted and let go, so a huge one is never held whole), the
// armored part of a PGP/MIME message, and the hash of its content (mail-content-hash.ts).
import type { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { type AttachmentStream, type HeaderLines, type Headers, MailParser, type MessageText, type StructuredHeader } from "mailparser";
import type { AttachmentInfo } from "../store/model.ts";
import {
  decodeFetchedHeader,
  FETCHED_BOX_HEADER,
  FETCHED_FLAGS_HEADER,
  FETCHED_FOLDER_HEADER,
  FETCHED_LABELS_HEADER,
  FETCHED_SPECIAL_USE_HEADER,
  FETCHED_UID_HEADER,
  FETCHED_UIDVALIDITY_HEADER,
  type FetchedTrace,
} from "./imported-tags.ts";
import { MailContentHashStream } from "./mail-content-hash.ts";
import { cut, MAX_CONTENT_TYPE_CHARS, MAX_FILE_NAME_CHARS } from "./message-budget.ts";

/**
 * The largest header block of a mail (or of one of its MIME parts), measured as the parser measures it:
 * each line counts for at least 64 bytes. The inbound SMTP server refuses a larger one with a 552; the
 * parser takes a little more, for the trace fields prepended on the way (Received, X-Fetched-*).
 */
export const MAX_HEADER_BYTES = 2 * 1024 * 1024;
const PARSER_MAX_HEAD_BYTES = MAX_HEADER_BYTES + 64 * 1024;

/**
 * A body longer than this (UTF-8 bytes) is cut to it in the message: a message is one KV document, which
 * must fit in a NATS message (1 MiB by default). The whole mail stays in the raw.
 */
export const MAX_BODY_BYTES = 256 * 1024;

export interface Head {
  headers: Headers;
  /** The unfolded raw value of the first header of this (lower-case) name, without its name. */
  value(name: string): string | null;
  /** Values of the X-Fetched flags/labels headers the IMAP bridge prepended (only the leading ones). */
  fetched: string[];
  /** Where the IMAP bridge fetched it from: null when it did not prepend its headers. */
  trace: FetchedTrace | null;
}

export interface Body {
  /** See mail-content-hash.ts. */
  contentSha256: string;
  text: string;
  html: string;
  attachments: AttachmentInfo[];
  /** For PGP/MIME: the armored encrypted part, what the user's client decrypts. */
  encryptedArmor: string | null;
}

export interface MailParse {
  /** Settles as soon as the headers are read. */
  head: Promise<Head>;
  /** Settles once the whole mail is read. */
  body: Promise<Body>;
  /** Stops reading a mail not read to its end (it is not needed any more); nothing once it was. */
  stop(): void;
}

/**
 * The parser every reading of a stored mail uses: one configuration, so that a mail's attachments are
 * the same, in the same order, when they are numbered at import and when one is looked up again.
 */
export function newMailParser(): MailParser {
  return new MailParser({ skipImageLinks: true, skipTextToHtml: true, checksumAlgo: false, maxHeadSize: PARSER_MAX_HEAD_BYTES });
}

/** Parses the mail as it streams in. */
export function parseMailStream(source: Readable): MailParse {
  const abort = new AbortController();
  const signal = abort.signal;
  const parser = newMailParser();
  const hash = new MailContentHashStream();
  let resolveHead!: (head: Head) => void;
  let rejectHead!: (err: unknown) => void;
  const head = new Promise<Head>((resolve, reject) => {
    resolveHead = resolve;
    rejectHead = reject;
  });
  let headers: Headers | null = null;
  parser.once("headers", (parsed: Headers) => {
    headers = parsed;
    resolveHead(headOf(parsed, parser.headerLines || []));
  });

  const attachments: AttachmentInfo[] = [];
  let text: MessageText | null = null;
  let encryptedArmor: string | null = null;
  const body = pipeline(
    source,
    hash,
    // Its typings narrow read() to its objects, which the generic Transform signature does not allow.
    parser as unknown as Transform,
    async (items: AsyncIterable<AttachmentStream | MessageText>) => {
      for await (const item of items) {
        if (item.type === "text") {
          text = item;
          continue;
        }
        const armored = headers !== null && isPgpPayload(headers, item);
        const kept: Buffer[] = [];
        let size = 0;
        for await (const chunk of item.content as AsyncIterable<Buffer>) {
          size += chunk.length;
          if (armored && size <= MAX_BODY_BYTES) kept.push(chunk);
        }
        item.release?.();
        if (armored && size <= MAX_BODY_BYTES) encryptedArmor = Buffer.concat(kept).toString("utf8").replace(/\r\n/g, "\n");
        if (isPgpControlPart(headers, item)) continue;
        attachments.push({
          attachment_id: String(attachments.length),
          content_type: cut(item.contentType, MAX_CONTENT_TYPE_CHARS),
          file_name: cut(item.filename ?? "", MAX_FILE_NAME_CHARS),
          size,
          is_inline: item.contentDisposition === "inline" || item.related === true,
        });
      }
    },
    { signal },
  ).then((): Body => {
    const parsed = text as MessageText | null;
    return { contentSha256: hash.digest() ?? "", text: parsed?.text ?? "", html: parsed?.html ?? "", attachments, encryptedArmor };
  });
  // A mail with nothing to parse has no headers event: the head is empty.
  body.then(
    () => resolveHead(headOf(new Map(), [])),
    (err: unknown) => rejectHead(err),
  );
  // Awaited later, or not at all when the mail is already imported: never an unhandled rejection.
  head.catch(() => undefined);
  body.catch(() => undefined);
  let ended = false;
  body.then(
    () => (ended = true),
    () => (ended = true),
  );
  // Not once read to its end: an abort builds a DOMException and its stack trace, for nothing.
  return { head, body, stop: () => ended || abort.abort() };
}

function headOf(headers: Headers, lines: HeaderLines): Head {
  const values = lines.map((line) => ({ key: line.key, value: unfold(line.line) }));
  // The IMAP bridge prepends its headers, one of each: only the first of each name in the leading run
  // counts, so a mail that begins with its own X-Fetched lines cannot add tags or move itself.
  const leading = new Map<string, string>();
  for (const line of values) {
    if (!line.key.startsWith("x-fetched-")) break;
    if (!leading.has(line.key)) leading.set(line.key, line.value);
  }
  const header = (name: string) => leading.get(name.toLowerCase()) ?? null;
  const fetched = [header(FETCHED_FLAGS_HEADER), header(FETCHED_LABELS_HEADER)].filter((value): value is string => value !== null);
  return {
    headers,
    value: (name) => values.find((line) => line.key === name)?.value ?? null,
    fetched,
    trace: traceOf(header),
  };
}

function traceOf(header: (name: string) => string | null): FetchedTrace | null {
  const box = header(FETCHED_BOX_HEADER);
  if (box === null) return null;
  const uid = Number(header(FETCHED_UID_HEADER));
  const flags = header(FETCHED_FLAGS_HEADER);
  return {
    mailbox: Buffer.from(box.replace(/\s+/g, ""), "base64").toString("utf8"),
    folderId: matching(header(FETCHED_FOLDER_HEADER), /^[a-z0-9]{1,32}$/),
    uidvalidity: matching(header(FETCHED_UIDVALIDITY_HEADER), /^[0-9]{1,20}$/),
    uid: Number.isSafeInteger(uid) && uid > 0 ? uid : null,
    specialUse: header(FETCHED_SPECIAL_USE_HEADER),
    flags: flags === null ? [] : decodeFetchedHeader(flags),
  };
}

function matching(value: string | null, pattern: RegExp): string | null {
  return value !== null && pattern.test(value) ? value : null;
}

function unfold(line: string): string {
  const colon = line.indexOf(":");
  return line
    .slice(colon + 1)
    .replace(/\r?\n(?=[ \t])/g, "")
    .trim();
}

function contentTypeOf(headers: Headers | null): string | null {
  const value = headers?.get("content-type") as StructuredHeader | undefined;
  return typeof value?.value === "string" ? value.value.toLowerCase() : null;
}

function isPgpMime(headers: Headers | null): boolean {
  const value = headers?.get("content-type") as StructuredHeader | undefined;
  return contentTypeOf(headers) === "multipart/encrypted" && (value?.params?.protocol ?? "").toLowerCase() === "application/pgp-encrypted";
}

/**
 * The first part of a PGP/MIME message (RFC 3156), its "Version: 1": not an attachment. Every other
 * attachment the parser emits is one, numbered in order from 0: that number is its `attachment_id`.
 */
export function isPgpControlPart(root: Headers | null, item: AttachmentStream): boolean {
  return contentTypeOf(item.headers) === "application/pgp-encrypted" && isPgpMime(root);
}

/** The second part of a PGP/MIME message (RFC 3156): the armored encrypted data. */
function isPgpPayload(root: Headers, item: AttachmentStream): boolean {
  return isPgpMime(root) && item.partId === "2" && contentTypeOf(item.headers) === "application/octet-stream";
}
