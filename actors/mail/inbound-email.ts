// The mq-worker's InboundEmail (DECISIONS.md §4): `process_inbound` on `inboundSMTP` turns a stored raw
// mail into a message of the user who received it. The raw is streamed through the parser: attachments
// are counted and let go, only their metadata is kept, so a huge one is never held whole. One message per
// user and Message-ID: the same mail again (its content, the bytes after the leading trace fields, the
// same) is imported once and another identity receiving it is attached to it; a different content under
// a Message-ID already held is kept as a conflicting copy on that message (message-id-conflicts.ts). What
// the message document cannot hold (more addresses per header than the limit, bodies past 256 KiB, ...)
// is cut and counted (message-budget.ts).
import { randomUUID } from "node:crypto";
import { Readable, type Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as NodeReadableStream } from "node:stream/web";
import { MailParser, type AddressObject, type AttachmentStream, type EmailAddress, type HeaderLines, type Headers, type MessageText, type StructuredHeader } from "mailparser";
import { failure, isReply, ok, type Reply } from "../../runtime/reply.ts";
import { discussionId } from "../messages/discussion.ts";
import type { CachedIdentity, CachedUser, InboundCache } from "../messages/inbound-cache.ts";
import { alreadyImported, claimExternal, importFailure, linkContacts, loadInbound, storeClaimed, storeOnce } from "../messages/inbound-import.ts";
import { SCHEMA_VERSION, type AttachmentInfo, type Message, type MessageIdConflict, type Participant, type ParticipantType, type RawMessage } from "../store/model.ts";
import type { Store } from "../store/store.ts";
import { decodeFetchedHeader, FETCHED_FLAGS_HEADER, FETCHED_LABELS_HEADER, importedTags } from "./imported-tags.ts";
import { mailContentHash, MailContentHashStream } from "./mail-content-hash.ts";
import { keepConflictingCopy } from "./message-id-conflicts.ts";
import { cut, fitDocument, MAX_ADDRESS_CHARS, MAX_ANCESTORS, MAX_CONTENT_TYPE_CHARS, MAX_FILE_NAME_CHARS, MAX_ID_CHARS, MAX_LABEL_CHARS, MAX_SUBJECT_CHARS } from "./message-budget.ts";

export interface InboundEmailOrder {
  /** The raw message's id. */
  message_id: string;
  /** The identity that received it: a local one (SMTP) or a remote one (IMAP). */
  remote_id: string;
  user_id: string;
}

export interface InboundEmailOptions {
  now?: () => Date;
  /**
   * Addresses of one header (From, To, Cc, ...) that become participants, linked to contacts; those past
   * it are counted in `participants_omitted` (CALIOPEN_MAIL_MAX_ADDRESSES_PER_HEADER).
   */
  maxAddressesPerHeader?: number;
  /** What the user's inbound actor remembers between imports (see inbound-cache.ts). */
  cache?: InboundCache;
}

export const DEFAULT_MAX_ADDRESSES_PER_HEADER = 100;

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


export async function processInboundEmail(store: Store, order: InboundEmailOrder, options: InboundEmailOptions = {}): Promise<Reply> {
  try {
    return await importInboundEmail(store, order, options);
  } catch (err) {
    return importFailure(order, err);
  }
}

/**
 * processInboundEmail for a caller that retries: what it cannot answer (the store unreachable, ...) is
 * thrown instead of replied; `importFailure` makes the reply processInboundEmail would give.
 */
export async function importInboundEmail(store: Store, order: InboundEmailOrder, options: InboundEmailOptions = {}): Promise<Reply> {
  const now = options.now ?? (() => new Date());
  const maxAddresses = options.maxAddressesPerHeader ?? DEFAULT_MAX_ADDRESSES_PER_HEADER;
  return importRaw(store, order, { now, maxAddresses, cache: options.cache });
}

async function importRaw(store: Store, order: InboundEmailOrder, { now, maxAddresses, cache }: { now: () => Date; maxAddresses: number; cache: InboundCache | undefined }): Promise<Reply> {
  const loaded = await loadInbound(
    store,
    order,
    (identity) => (identity.protocol === "twitter" ? `identity ${identity.identity_id} is a twitter identity, it does not receive mail` : null),
    cache,
  );
  if (isReply(loaded)) return loaded;
  const { user, identity, raw } = loaded;
  const rawId = raw.raw_msg_id;
  const content = await store.raws.stream(rawId);
  if (content === null) return failure(`raw message ${rawId} has no stored content`);

  const abort = new AbortController();
  const parse = startParse(Readable.fromWeb(content as NodeReadableStream<Uint8Array>), abort.signal);
  let parsed = false;
  parse.body.then(
    () => (parsed = true),
    () => (parsed = true),
  );
  try {
    return await importParsed(store, { user, identity, raw, now, maxAddresses, cache }, parse);
  } finally {
    // Stop reading a raw not parsed to its end (already imported, or a failure). Not otherwise: an
    // abort builds a DOMException and its stack trace, for nothing.
    if (!parsed) abort.abort();
  }
}

interface Context {
  user: CachedUser;
  identity: CachedIdentity;
  raw: RawMessage;
  now: () => Date;
  maxAddresses: number;
  cache: InboundCache | undefined;
}

async function importParsed(store: Store, { user, identity, raw, now, maxAddresses, cache }: Context, parse: { head: Promise<Head>; body: Promise<Body> }): Promise<Reply> {
  const userId = user.user_id;
  const identityId = identity.identity_id;
  const rawId = raw.raw_msg_id;
  let head: Head;
  try {
    head = await parse.head;
  } catch (err) {
    return failure(`cannot parse raw message ${rawId}: ${describe(err)}`);
  }

  const messageId = firstId(head.value("message-id"));
  // Claimed before the body is read: a mail seen before (a retried order, the same mail at another
  // identity) is known by the claim, and a new one costs no lookup first.
  const claim = messageId === null ? null : await claimExternal(store, userId, messageId);
  const known = claim?.existing ?? null;
  // This very raw handled before (a retried order): no need to read it again.
  if (known !== null) {
    if (known.raw_msg_id === rawId) return alreadyImported(store, userId, known.message_id, identityId, rawId, known.discussion_id);
    const listed = known.message_id_conflicts?.find((conflict) => conflict.raw_id === rawId && conflict.identity_id === identityId);
    if (listed !== undefined) return keepConflictingCopy(store, known, listed);
  }

  let body: Body;
  try {
    body = await parse.body;
  } catch (err) {
    return failure(`cannot parse raw message ${rawId}: ${describe(err)}`);
  }
  // A mail without Message-ID is known by its content.
  const externalId = messageId ?? `sha256:${body.contentSha256}`;
  const copy: MessageIdConflict = { raw_id: rawId, content_sha256: body.contentSha256, identity_id: identityId, received_at: raw.date_insert };
  const holder = known ?? (messageId === null ? await store.messages.byExternalId(userId, externalId) : null);
  if (holder !== null) return sameMailOrConflict(store, holder, copy);

  const { participants: found, omitted } = participantsOf(head.headers, maxAddresses);
  const participants = await linkContacts(store, user, identity.identifier, found, cache);
  const listId = listIdOf(head.value("list-id"));
  const inReplyTo = firstId(head.value("in-reply-to"));
  const references = allIds(head.value("references")).slice(-MAX_ANCESTORS);
  const parentExternal = inReplyTo ?? references.at(-1) ?? null;
  const parentId = parentExternal === null ? null : (cache?.messageRef(parentExternal)?.message_id ?? (await store.messages.idByExternalId(userId, parentExternal)));
  const bodyPlain = truncate(body.encryptedArmor ?? body.text);
  const bodyHtml = truncate(body.html);
  const at = now().toISOString();

  const built: Message = {
    schema: SCHEMA_VERSION,
    user_id: userId,
    message_id: claim?.messageId ?? randomUUID(),
    // The discussion is the people writing to each other: Reply-To and Sender do not change it.
    discussion_id: discussionId(
      participants.filter((p) => p.type === "From" || p.type === "To" || p.type === "Cc" || p.type === "Bcc"),
      listId,
    ),
    raw_msg_id: rawId,
    subject: head.headers.get("subject") === undefined ? "" : cut(String(head.headers.get("subject")), MAX_SUBJECT_CHARS),
    body_plain: bodyPlain.text,
    body_html: bodyHtml.text,
    date: dateOf(head.value("date"), now),
    date_insert: at,
    is_draft: false,
    is_unread: true,
    is_received: true,
    is_answered: false,
    participants,
    external_references: { message_id: externalId, parent_id: inReplyTo ?? "", ancestors_ids: references },
    attachments: body.attachments,
    tags: identity.type === "remote" ? importedTags(head.fetched.flatMap(decodeFetchedHeader)) : [],
    protocol: "email",
    user_identities: [identityId],
    parent_id: parentId,
    content_sha256: body.contentSha256,
    ...(Object.keys(omitted).length > 0 && { participants_omitted: omitted }),
  };
  const { message, bodyCut } = fitDocument(built);

  const stored = claim === null ? await storeOnce(store, message, externalId, rawId) : await storeClaimed(store, message, rawId);
  cache?.rememberMessage(externalId, stored.message);
  // Another import of this Message-ID stored its message first.
  if (!stored.created) return sameMailOrConflict(store, stored.message, copy);
  const truncated = bodyPlain.truncated || bodyHtml.truncated || bodyCut;
  return ok("message imported", { message_id: stored.message.message_id, discussion_id: stored.message.discussion_id, ...(truncated && { body_truncated: true }) });
}

/**
 * The answer for a mail whose Message-ID `holder` has: the same mail again ("already imported", the
 * receiving identity added to it), or a different one, kept as a conflicting copy.
 */
async function sameMailOrConflict(store: Store, holder: Message, copy: MessageIdConflict): Promise<Reply> {
  if ((await heldContent(store, holder, copy.content_sha256)) === copy.content_sha256) {
    return alreadyImported(store, holder.user_id, holder.message_id, copy.identity_id, copy.raw_id, holder.discussion_id);
  }
  return keepConflictingCopy(store, holder, copy);
}

/**
 * The holder's content hash. A message stored before content hashes were kept gets its hash now, from its
 * raw (once): without a raw to read, it is taken for the same mail as `incoming`, as it was then.
 */
async function heldContent(store: Store, holder: Message, incoming: string): Promise<string> {
  if (typeof holder.content_sha256 === "string") return holder.content_sha256;
  const its = (holder.raw_msg_id === null ? null : await rawContentHash(store, holder.raw_msg_id)) ?? incoming;
  const updated = await store.messages.update(holder.user_id, holder.message_id, (current) => (typeof current.content_sha256 === "string" ? null : { ...current, content_sha256: its }));
  return updated?.content_sha256 ?? its;
}

async function rawContentHash(store: Store, rawId: string): Promise<string | null> {
  const content = await store.raws.stream(rawId);
  if (content === null) return null;
  try {
    return await mailContentHash(Readable.fromWeb(content as NodeReadableStream<Uint8Array>));
  } catch {
    // An unreadable raw cannot tell: take it for the same mail.
    return null;
  }
}


// ---------------------------------------------------------------------------------------------------
// Parsing

interface Head {
  headers: Headers;
  /** The unfolded raw value of the first header of this (lower-case) name, without its name. */
  value(name: string): string | null;
  /** Values of the X-Fetched flags/labels headers the IMAP bridge prepended (only the leading ones). */
  fetched: string[];
}

interface Body {
  /** See mail-content-hash.ts. */
  contentSha256: string;
  text: string;
  html: string;
  attachments: AttachmentInfo[];
  /** For PGP/MIME: the armored encrypted part, what the user's client decrypts. */
  encryptedArmor: string | null;
}

/** Parses the mail as it streams in; `head` settles as soon as the headers are read. */
function startParse(source: Readable, signal: AbortSignal): { head: Promise<Head>; body: Promise<Body> } {
  const parser = new MailParser({ skipImageLinks: true, skipTextToHtml: true, checksumAlgo: false, maxHeadSize: PARSER_MAX_HEAD_BYTES });
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
        if (contentTypeOf(item.headers) === "application/pgp-encrypted" && isPgpMime(headers)) continue; // the "Version: 1" control part
        attachments.push({
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
  return { head, body };
}

function headOf(headers: Headers, lines: HeaderLines): Head {
  const values = lines.map((line) => ({ key: line.key, value: unfold(line.line) }));
  const fetched: string[] = [];
  // The IMAP bridge prepends its headers: only those count, a sender cannot add tags further down.
  for (const line of values) {
    if (!line.key.startsWith("x-fetched-")) break;
    if (line.key === FETCHED_FLAGS_HEADER.toLowerCase() || line.key === FETCHED_LABELS_HEADER.toLowerCase()) fetched.push(line.value);
  }
  return {
    headers,
    value: (name) => values.find((line) => line.key === name)?.value ?? null,
    fetched,
  };
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

/** The second part of a PGP/MIME message (RFC 3156): the armored encrypted data. */
function isPgpPayload(root: Headers, item: AttachmentStream): boolean {
  return isPgpMime(root) && item.partId === "2" && contentTypeOf(item.headers) === "application/octet-stream";
}

// ---------------------------------------------------------------------------------------------------
// Fields

const ADDRESS_HEADERS: [string, ParticipantType][] = [
  ["from", "From"],
  ["to", "To"],
  ["cc", "Cc"],
  ["bcc", "Bcc"],
  ["reply-to", "Reply-To"],
  ["sender", "Sender"],
];

/**
 * The addresses of the address headers, at most `maxPerHeader` of each header; the others, and strings
 * too long to be addresses, are counted by header.
 */
function participantsOf(headers: Headers, maxPerHeader: number): { participants: Participant[]; omitted: Partial<Record<ParticipantType, number>> } {
  const out: Participant[] = [];
  const omitted: Partial<Record<ParticipantType, number>> = {};
  const seen = new Set<string>();
  for (const [header, type] of ADDRESS_HEADERS) {
    const objects = ([] as AddressObject[]).concat((headers.get(header) as AddressObject | AddressObject[] | undefined) ?? []);
    let kept = 0;
    for (const entry of objects.flatMap((object) => flatten(object.value ?? []))) {
      const address = (entry.address ?? "").trim().toLowerCase();
      // Not an address (a bare word, an empty group): nobody to write to.
      if (!address.includes("@") || seen.has(`${type} ${address}`)) continue;
      if (kept >= maxPerHeader || address.length > MAX_ADDRESS_CHARS) {
        omitted[type] = (omitted[type] ?? 0) + 1;
        continue;
      }
      seen.add(`${type} ${address}`);
      kept++;
      out.push({ type, address, label: cut(entry.name ?? "", MAX_LABEL_CHARS), protocol: "email", contact_ids: [] });
    }
  }
  return { participants: out, omitted };
}

function flatten(entries: EmailAddress[]): EmailAddress[] {
  return entries.flatMap((entry) => (entry.group !== undefined ? flatten(entry.group) : [entry]));
}

/** Each participant's contact; the user's own address at this identity is the user's own card. */

/** Message ids of a Message-ID / In-Reply-To / References value, without angle brackets (too long: none). */
function allIds(value: string | null): string[] {
  if (value === null) return [];
  const valid = (id: string) => id !== "" && id.length <= MAX_ID_CHARS;
  const bracketed = [...value.matchAll(/<([^<>]*)>/g)].map((match) => (match[1] ?? "").replace(/\s+/g, "")).filter(valid);
  if (bracketed.length > 0) return bracketed;
  return value.split(/[\s,]+/).filter(valid);
}

function firstId(value: string | null): string | null {
  return allIds(value)[0] ?? null;
}

/** `List-Id: Caliopen developers <dev.lists.caliopen.org>` → `dev.lists.caliopen.org`. */
function listIdOf(value: string | null): string | null {
  if (value === null) return null;
  const bracketed = /<([^<>]+)>/.exec(value)?.[1]?.trim();
  const id = bracketed ?? value.trim();
  return id === "" ? null : id;
}

function dateOf(value: string | null, now: () => Date): string {
  const parsed = value === null ? null : new Date(value);
  return parsed === null || Number.isNaN(parsed.getTime()) ? now().toISOString() : parsed.toISOString();
}

function truncate(text: string): { text: string; truncated: boolean } {
  const bytes = Buffer.from(text, "utf8");
  if (bytes.length <= MAX_BODY_BYTES) return { text, truncated: false };
  // A character cut in the middle decodes to U+FFFD: drop it.
  return { text: bytes.subarray(0, MAX_BODY_BYTES).toString("utf8").replace(/\uFFFD+$/, ""), truncated: true };
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message || err.name : String(err);
}
