// The mq-worker's InboundEmail (docs/decisions.md §4): `process_inbound` on `inboundSMTP` turns a stored raw
// mail into a message of the user who received it. The raw is streamed through the parser
// (parse-mail-stream.ts), so a huge attachment is never held whole. One message per user and
// Message-ID: the same mail again (its content, the bytes after the leading trace fields, the same) is
// imported once and another identity receiving it is attached to it; a different content under
// a Message-ID already held is kept as a conflicting copy on that message (message-id-conflicts.ts). What
// the message document cannot hold (more addresses per header than the limit, bodies past 256 KiB, ...)
// is cut and counted (message-budget.ts).
import type { AddressObject, EmailAddress, Headers } from "mailparser";
import { failure, isReply, ok, type Reply } from "../../runtime/reply.ts";
import { discussionId } from "../messages/discussion.ts";
import type { CachedIdentity, CachedUser, InboundCache } from "../messages/inbound-cache.ts";
import {
  alreadyImported,
  claimExternal,
  type ImportObserver,
  type InboundOrder,
  importFailure,
  linkContacts,
  loadInbound,
  storeClaimed,
} from "../messages/inbound-import.ts";
import {
  type Message,
  type MessageIdConflict,
  type MessageLocation,
  type Participant,
  type ParticipantType,
  type RawMessage,
  SCHEMA_VERSION,
} from "../store/model.ts";
import type { Store } from "../store/store.ts";
import { decodeFetchedHeader, type FetchedTrace, hasFlag, importedTags } from "./imported-tags.ts";
import { mailContentHash } from "./mail-content-hash.ts";
import { cut, fitDocument, MAX_ADDRESS_CHARS, MAX_ANCESTORS, MAX_ID_CHARS, MAX_LABEL_CHARS, MAX_SUBJECT_CHARS } from "./message-budget.ts";
import { keepConflictingCopy } from "./message-id-conflicts.ts";
import { type Body, type Head, MAX_BODY_BYTES, type MailParse, parseMailStream } from "./parse-mail-stream.ts";
import { recognisePgp } from "./pgp-inbound.ts";

export interface InboundEmailOptions {
  now?: () => Date;
  /**
   * Addresses of one header (From, To, Cc, ...) that become participants, linked to contacts; those past
   * it are counted in `participants_omitted` (CALIOPEN_MAIL_MAX_ADDRESSES_PER_HEADER).
   */
  maxAddressesPerHeader?: number;
  /** What the user's inbound actor remembers between imports (see inbound-cache.ts). */
  cache?: InboundCache;
  onImported?: ImportObserver;
}

export const DEFAULT_MAX_ADDRESSES_PER_HEADER = 100;

export async function processInboundEmail(store: Store, order: InboundOrder, options: InboundEmailOptions = {}): Promise<Reply> {
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
export async function importInboundEmail(store: Store, order: InboundOrder, options: InboundEmailOptions = {}): Promise<Reply> {
  const now = options.now ?? (() => new Date());
  const maxAddresses = options.maxAddressesPerHeader ?? DEFAULT_MAX_ADDRESSES_PER_HEADER;
  return importRaw(store, order, { now, maxAddresses, cache: options.cache, onImported: options.onImported });
}

async function importRaw(
  store: Store,
  order: InboundOrder,
  { now, maxAddresses, cache, onImported }: Pick<Context, "now" | "maxAddresses" | "cache" | "onImported">,
): Promise<Reply> {
  const loaded = await loadInbound(
    store,
    order,
    (identity) => (identity.protocol === "twitter" ? `identity ${identity.identity_id} is a twitter identity, it does not receive mail` : null),
    cache,
  );
  if (isReply(loaded)) return loaded;
  const { user, identity, raw } = loaded;
  const rawId = raw.raw_msg_id;
  const content = await store.raws.readable(rawId);
  if (content === null) return failure(`raw message ${rawId} has no stored content`);

  const parse = parseMailStream(content);
  try {
    return await importParsed(store, { user, identity, raw, now, maxAddresses, cache, onImported }, parse);
  } finally {
    parse.stop();
  }
}

interface Context {
  user: CachedUser;
  identity: CachedIdentity;
  raw: RawMessage;
  now: () => Date;
  maxAddresses: number;
  cache: InboundCache | undefined;
  onImported: ImportObserver | undefined;
}

async function importParsed(store: Store, { user, identity, raw, now, maxAddresses, cache, onImported }: Context, parse: MailParse): Promise<Reply> {
  const userId = user.user_id;
  const identityId = identity.identity_id;
  const rawId = raw.raw_msg_id;
  let head: Head;
  try {
    head = await parse.head;
  } catch (err) {
    return failure(`cannot parse raw message ${rawId}: ${describe(err)}`);
  }

  let body: Body;
  try {
    body = await parse.body;
  } catch (err) {
    return failure(`cannot parse raw message ${rawId}: ${describe(err)}`);
  }
  // A mail without Message-ID is known by its content.
  const messageId = firstId(head.value("message-id"));
  const externalId = messageId ?? `sha256:${body.contentSha256}`;
  const copy: MessageIdConflict = { raw_id: rawId, content_sha256: body.contentSha256, identity_id: identityId, received_at: raw.date_insert };
  // Where the IMAP bridge fetched it from: only a remote identity's mail has a trace to believe.
  const trace = identity.type === "remote" ? head.trace : null;
  const location = trace === null ? null : locationOf(identityId, trace);
  // Claimed first, once the mail is known to be readable (a claim never names a mail that cannot be
  // stored): a new mail costs no lookup, one seen before is known by the claim.
  const claim = await claimExternal(store, userId, externalId);
  const known = claim.existing;
  if (known !== null) {
    // This very raw handled before (a retried order).
    if (known.raw_msg_id === rawId) return alreadyImported(store, userId, known.message_id, identityId, rawId, known.discussion_id);
    const listed = known.message_id_conflicts?.find((conflict) => conflict.raw_id === rawId && conflict.identity_id === identityId);
    if (listed !== undefined) return keepConflictingCopy(store, known, listed);
    return sameMailOrConflict(store, known, copy, location);
  }

  const { participants: found, omitted } = participantsOf(head.headers, maxAddresses);
  const participants = await linkContacts(store, user, identity.identifier, found, cache);
  // PGP/MIME: encrypted, or signed and checked against the sender's contact's keys.
  const pgp = await recognisePgp(store, userId, { head, body, raw, participants, now: now() });
  const listId = listIdOf(head.value("list-id"));
  const inReplyTo = firstId(head.value("in-reply-to"));
  const references = allIds(head.value("references")).slice(-MAX_ANCESTORS);
  const parentExternal = inReplyTo ?? references.at(-1) ?? null;
  const parentId =
    parentExternal === null ? null : (cache?.messageRef(parentExternal)?.message_id ?? (await store.messages.idByExternalId(userId, parentExternal)));
  const bodyPlain = truncate(body.encryptedArmor ?? body.text);
  const bodyHtml = truncate(body.html);
  const at = now().toISOString();
  // Mail synced from the account's Sent folder is the user's own; \Seen and \Answered as on the server.
  const sent = trace !== null && trace.specialUse?.toLowerCase() === "\\sent";
  const seen = trace !== null && hasFlag(trace.flags, "\\Seen");

  const built: Message = {
    schema: SCHEMA_VERSION,
    user_id: userId,
    message_id: claim.messageId,
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
    is_unread: !(sent || seen),
    is_flagged: trace !== null && hasFlag(trace.flags, "\\Flagged"),
    is_received: !sent,
    is_answered: trace !== null && hasFlag(trace.flags, "\\Answered"),
    participants,
    external_references: { message_id: externalId, parent_id: inReplyTo ?? "", ancestors_ids: references },
    attachments: body.attachments,
    tags: identity.type === "remote" ? importedTags(head.fetched.flatMap(decodeFetchedHeader)) : [],
    protocol: "email",
    user_identities: [identityId],
    parent_id: parentId,
    content_sha256: body.contentSha256,
    ...pgp,
    ...(Object.keys(omitted).length > 0 && { participants_omitted: omitted }),
    ...(location !== null && { locations: [location] }),
  };
  const { message, bodyCut } = fitDocument(built);

  const stored = await storeClaimed(store, message, rawId);
  cache?.rememberMessage(externalId, stored.message);
  // Another import of this Message-ID stored its message first.
  if (!stored.created) return sameMailOrConflict(store, stored.message, copy, location);
  onImported?.(stored.message);
  const truncated = bodyPlain.truncated || bodyHtml.truncated || bodyCut;
  return ok("message imported", {
    message_id: stored.message.message_id,
    discussion_id: stored.message.discussion_id,
    ...(truncated && { body_truncated: true }),
  });
}

/**
 * The answer for a mail whose Message-ID `holder` has: the same mail again ("already imported", the
 * receiving identity and the folder it came from added to it), or a different one, kept as a
 * conflicting copy.
 */
async function sameMailOrConflict(store: Store, holder: Message, copy: MessageIdConflict, location: MessageLocation | null): Promise<Reply> {
  if ((await heldContent(store, holder, copy.content_sha256)) === copy.content_sha256) {
    return alreadyImported(store, holder.user_id, holder.message_id, copy.identity_id, copy.raw_id, holder.discussion_id, location);
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
  const updated = await store.messages.update(holder.user_id, holder.message_id, (current) =>
    typeof current.content_sha256 === "string" ? null : { ...current, content_sha256: its },
  );
  return updated?.content_sha256 ?? its;
}

async function rawContentHash(store: Store, rawId: string): Promise<string | null> {
  const content = await store.raws.readable(rawId);
  if (content === null) return null;
  try {
    return await mailContentHash(content);
  } catch {
    // An unreadable raw cannot tell: take it for the same mail.
    return null;
  }
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
  return {
    text: bytes
      .subarray(0, MAX_BODY_BYTES)
      .toString("utf8")
      .replace(/\uFFFD+$/, ""),
    truncated: true,
  };
}

/** The longest folder path recorded (the IMAP bridge syncs no folder with a longer one). */
const MAX_MAILBOX_CHARS = 512;

function locationOf(identityId: string, trace: FetchedTrace): MessageLocation {
  return {
    identity_id: identityId,
    mailbox: cut(trace.mailbox, MAX_MAILBOX_CHARS),
    ...(trace.folderId !== null && { folder_id: trace.folderId }),
    ...(trace.uidvalidity !== null && { uidvalidity: trace.uidvalidity }),
    uid: trace.uid,
  };
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message || err.name : String(err);
}
