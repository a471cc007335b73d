// A fetched message as stored: the raw RFC 5322 bytes with the synthetic `X-Fetched-*` headers in front
// (original Caliopen's format, §5.6), which tell the inbound processor where the mail came from and
// which IMAP flags and Gmail labels it had.
import { encodeFetchedHeader } from "../mail/imported-tags.ts";
import type { RawMessage } from "../store/model.ts";
import type { Store } from "../store/store.ts";

export interface FetchedFrom {
  account: string;
  mailbox: string;
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
 * Stores a fetched message. A whole one is stored once per account and content: fetched again (a
 * fullfetch, a sync run again after a takeover, the same mail twice in the mailbox) it is the raw stored
 * the first time, so its import finds the message that raw became instead of parsing a copy, and the
 * store does not grow by a raw per fetch. The X-Fetched headers are its trace, not compared (flags
 * change). A large one, streamed, is stored anew each time: its import still finds its message by
 * Message-ID or content.
 */
export async function storeFetched(store: Store, identityId: string, source: Buffer | AsyncIterable<Uint8Array>, from: FetchedFrom): Promise<RawMessage> {
  if (!Buffer.isBuffer(source)) return store.raws.put(from.userId, withFetchedHeadersStreamed(source, from));
  return (await store.raws.putOnce(from.userId, source, { scope: `imap ${identityId}`, trace: fetchedHeaders(from) })).raw;
}

function fetchedHeaders(from: FetchedFrom): Buffer {
  const lines = [
    `X-Fetched-Imap-Account: ${from.account.replace(/[\r\n]+/g, " ")}`,
    `X-Fetched-Imap-Box: ${Buffer.from(from.mailbox, "utf8").toString("base64")}`,
    `X-Fetched-Imap-For: ${from.userId}`,
    `X-Fetched-Imap-Uid: ${from.uid}`,
  ];
  if (from.flags.length > 0) lines.push(`X-Fetched-Imap-Flags: ${encodeFetchedHeader(from.flags)}`);
  if (from.labels !== undefined && from.labels.length > 0) lines.push(`X-Fetched-X-GM-LABELS: ${encodeFetchedHeader(from.labels)}`);
  return Buffer.from(`${lines.join("\r\n")}\r\n`, "utf8");
}
