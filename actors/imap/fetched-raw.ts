// A fetched message as stored: the raw RFC 5322 bytes with the synthetic `X-Fetched-*` headers in front
// (original Caliopen's format, §5.6), which tell the inbound processor where the mail came from and
// which IMAP flags and Gmail labels it had, and the special use of its folder (Sent mail is the user's).
import { encodeFetchedHeader, FETCHED_FOLDER_HEADER, FETCHED_SPECIAL_USE_HEADER, FETCHED_UIDVALIDITY_HEADER } from "../mail/imported-tags.ts";
import type { RawMessage } from "../store/model.ts";
import type { Store } from "../store/store.ts";

export interface FetchedFrom {
  account: string;
  mailbox: string;
  /** The folder's special-use attribute (`\Sent`…), if it has one. */
  specialUse?: string | null;
  /** The folder's own id and the UIDVALIDITY of `uid` (see FolderCursor). */
  folderId?: string;
  uidvalidity?: string;
  userId: string;
  uid: number;
  flags: string[];
  labels?: string[];
}

export function withFetchedHeaders(source: Buffer, from: FetchedFrom): Buffer {
  return Buffer.concat([fetchedHeaders(from), source]);
}

/** The same for a body that streams in (a large message, fetched in pieces). */
async function* withFetchedHeadersStreamed(source: AsyncIterable<Uint8Array>, from: FetchedFrom): AsyncIterable<Uint8Array> {
  yield fetchedHeaders(from);
  yield* source;
}

/**
 * Stores a fetched message. A whole one is stored once per folder and content: fetched again (a
 * fullfetch, a sync run again after a takeover, the same mail twice in the mailbox) it is the raw stored
 * the first time, so its import finds the message that raw became instead of parsing a copy, and the
 * store does not grow by a raw per fetch. The X-Fetched headers are its trace, not compared (flags
 * change). A large one, streamed, is stored anew each time: its import still finds its message by
 * Message-ID or content.
 */
export async function storeFetched(store: Store, identityId: string, source: Buffer | AsyncIterable<Uint8Array>, from: FetchedFrom): Promise<RawMessage> {
  if (!Buffer.isBuffer(source)) return store.raws.put(from.userId, withFetchedHeadersStreamed(source, from));
  return (await store.raws.putOnce(from.userId, source, { scope: rawScope(identityId, from.mailbox), trace: fetchedHeaders(from) })).raw;
}

/**
 * One raw per folder a mail is in: each raw's trace says which folder it came from, which the import
 * records on the message. INBOX keeps the scope it had when it was the only folder synced.
 */
function rawScope(identityId: string, mailbox: string): string {
  return mailbox === "INBOX" ? `imap ${identityId}` : `imap ${identityId} ${mailbox}`;
}

function fetchedHeaders(from: FetchedFrom): Buffer {
  const lines = [
    `X-Fetched-Imap-Account: ${from.account.replace(/[\r\n]+/g, " ")}`,
    `X-Fetched-Imap-Box: ${Buffer.from(from.mailbox, "utf8").toString("base64")}`,
    `X-Fetched-Imap-For: ${from.userId}`,
    `X-Fetched-Imap-Uid: ${from.uid}`,
  ];
  if (from.folderId !== undefined) lines.push(`${FETCHED_FOLDER_HEADER}: ${from.folderId}`);
  if (from.uidvalidity !== undefined) lines.push(`${FETCHED_UIDVALIDITY_HEADER}: ${from.uidvalidity}`);
  if (typeof from.specialUse === "string" && /^\\[A-Za-z]{1,32}$/.test(from.specialUse)) lines.push(`${FETCHED_SPECIAL_USE_HEADER}: ${from.specialUse}`);
  if (from.flags.length > 0) lines.push(`X-Fetched-Imap-Flags: ${encodeFetchedHeader(from.flags)}`);
  if (from.labels !== undefined && from.labels.length > 0) lines.push(`X-Fetched-X-GM-LABELS: ${encodeFetchedHeader(from.labels)}`);
  return Buffer.from(`${lines.join("\r\n")}\r\n`, "utf8");
}
