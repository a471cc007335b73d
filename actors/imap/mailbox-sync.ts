// The sync algorithm (docs/decisions.md §4): the UIDs of the mailbox after the last one seen (all of them on a
// first sync, a changed UIDVALIDITY or a fullfetch), plus the UIDs that failed last time, fetched in a
// read-only EXAMINE (BODY.PEEK[]: nothing is ever marked \Seen on the server) and imported a few at a
// time. The cursor only moves past a UID once it is imported, skipped for good or remembered as
// failed; failed UIDs are retried at the next sync.
//
// Sizes first: each batch's RFC822.SIZE, flags and labels are fetched without bodies. A message
// announced over the size limit is skipped (with its reason in the outcome) and never fetched; a small
// one is fetched whole with the others of its batch; a large one is fetched in pieces that stream into
// the store, and skipped once the server sends more than the limit whatever it announced. No body is
// ever held whole above a piece's size (see imap-limits.ts for what a connection accepts at most).
import type { Readable } from "node:stream";
import type { ImapFlow } from "imapflow";
import { byteSize, FETCH_PIECE_BYTES } from "./imap-limits.ts";

export interface SyncCursor {
  /** The mailbox's UIDVALIDITY when lastseenuid was read (a BigInt, kept as a string). */
  uidvalidity: string | null;
  lastseenuid: number;
  failed_uids: number[];
  /** Its HIGHESTMODSEQ when the sync opened it (CONDSTORE), null when the server keeps none. */
  highestmodseq?: string | null;
}

export interface SyncProgress {
  total: number;
  /** Messages handled: imported, failed or skipped. */
  done: number;
  failed: number;
  /** Messages passed over for good (over the size limit): the cursor moves past them. */
  skipped: number;
}

/** A message passed over, and why. */
export interface SkippedMessage {
  mailbox: string;
  uid: number;
  /** The size the server announced (RFC822.SIZE), null when it gave none. */
  size: number | null;
  reason: string;
}

export interface SyncOutcome extends SyncProgress {
  cursor: SyncCursor;
  /** The first few messages skipped in this run (`skipped` counts them all). */
  skipped_messages: SkippedMessage[];
}

export interface MessageInfo {
  uid: number;
  size: number | null;
  flags: string[];
  labels: string[];
}

export interface FetchedMessage extends MessageInfo {
  /** The UIDVALIDITY its UID belongs to. */
  uidvalidity: string;
  /** The raw bytes: whole for a small message, as they arrive for a large one (fetched in pieces). */
  source: Buffer | AsyncIterable<Uint8Array>;
}

/** Thrown by an import, or by a body as it streams, to pass a message over for good. */
export class SkipMessage extends Error {
  override readonly name = "SkipMessage";
}

export interface SyncOptions {
  mailbox: string;
  /** fullfetch: every message again (imports are de-duplicated downstream). */
  full: boolean;
  /** Messages imported at the same time. */
  concurrency: number;
  /** Larger messages are skipped. */
  maxMessageBytes: number;
  /** Imports one message; throws when it could not be imported (SkipMessage: never to be tried again). */
  importMessage(message: FetchedMessage): Promise<void>;
  /** Called now and then (and at the end) with the progress and the cursor as it may be saved. */
  onProgress(progress: SyncProgress, cursor: SyncCursor): void;
  /** Progress was made; from now on the sync waits for `step` (for its deadline). */
  waitingFor?(step: string): void;
  /**
   * Every body is fetched and the mailbox lock released: the connection is free for others (the watch
   * goes back to IDLE) while the last imports finish.
   */
  fetched?(): void;
  /**
   * Run with the mailbox open, before new mail is fetched, when the cursor is still good (same
   * UIDVALIDITY, not a full fetch): what changed on the server among the messages synced before.
   */
  reconcile?(client: ImapFlow, known: { uidvalidity: string; lastseenuid: number; highestmodseq: string | null }): Promise<void>;
}

const FETCH_BATCH = 500;
/**
 * Bodies asked in one UID FETCH at most, by count and by announced size: imapflow reads an answer as
 * fast as the server sends it, whatever the import keeps up with, so one FETCH is what may wait in
 * memory (a size that lies is still capped per message by the connection's literal limit).
 */
export const WHOLE_FETCH_MESSAGES = 64;
export const WHOLE_FETCH_BYTES = 16 * 1024 * 1024;

/** The messages to fetch whole, in groups of at most WHOLE_FETCH_MESSAGES and WHOLE_FETCH_BYTES announced. */
export function* wholeFetches(infos: MessageInfo[]): Generator<Map<number, MessageInfo>> {
  let group = new Map<number, MessageInfo>();
  let bytes = 0;
  for (const info of infos) {
    const size = info.size ?? 0;
    if (group.size > 0 && (group.size >= WHOLE_FETCH_MESSAGES || bytes + size > WHOLE_FETCH_BYTES)) {
      yield group;
      group = new Map();
      bytes = 0;
    }
    group.set(info.uid, info);
    bytes += size;
  }
  if (group.size > 0) yield group;
}
const PROGRESS_EVERY = 100;
const PROGRESS_EVERY_MS = 1_000;
/** Skipped messages listed in an outcome; the count covers the rest. */
const SKIPPED_LISTED = 10;

export async function syncMailbox(client: ImapFlow, cursor: SyncCursor, options: SyncOptions): Promise<SyncOutcome> {
  const waitingFor = options.waitingFor ?? (() => undefined);
  waitingFor(`opening ${options.mailbox}`);
  // On a connection that has the mailbox open already (the watch's, or kept from the last sync), the
  // server may show mail that arrived meanwhile only at its next sync point: a NOOP is one.
  const alreadyOpen = client.mailbox !== false && client.mailbox.path === options.mailbox;
  const lock = await client.getMailboxLock(options.mailbox, { readOnly: true });
  let locked = true;
  const unlock = () => {
    if (locked) lock.release();
    locked = false;
  };
  try {
    if (alreadyOpen) {
      waitingFor("the answer to NOOP");
      await client.noop();
    }
    const mailbox = client.mailbox;
    if (mailbox === false) throw new Error(`mailbox ${options.mailbox} could not be opened`);
    const validity = String(mailbox.uidValidity);
    const modseq = mailbox.highestModseq === undefined ? null : String(mailbox.highestModseq);
    const restart = options.full || cursor.uidvalidity !== validity;
    const after = restart ? 0 : cursor.lastseenuid;
    if (!restart && after > 0 && options.reconcile !== undefined) {
      waitingFor("what changed on the server");
      await options.reconcile(client, { uidvalidity: validity, lastseenuid: after, highestmodseq: cursor.highestmodseq ?? null });
    }
    waitingFor("the answer to UID SEARCH");
    // `N:*` always returns the last message, even below N: keep only the UIDs really after the cursor.
    const found = (await client.search({ uid: `${after + 1}:*` }, { uid: true })) || [];
    const fresh = [...new Set(found)].filter((uid) => uid > after).sort((a, b) => a - b);
    const retry = restart ? [] : cursor.failed_uids.filter((uid) => uid <= after);
    const wanted = [...retry, ...fresh];

    const progress: SyncProgress = { total: wanted.length, done: 0, failed: 0, skipped: 0 };
    const skippedMessages: SkippedMessage[] = [];
    const completed = new Set<number>();
    const failed = new Set<number>();
    let lastseenuid = after;
    let reportedAt = Date.now();
    const currentCursor = (): SyncCursor => ({ uidvalidity: validity, lastseenuid, failed_uids: [...failed].sort((a, b) => a - b), highestmodseq: modseq });
    // The first of `fresh` not yet passed: each UID is passed once, so a sync of N messages costs O(N).
    let frontier = 0;
    const advance = () => {
      // Past a UID only once every UID up to it is done (imported, skipped, or remembered as failed).
      for (; frontier < fresh.length; frontier++) {
        const uid = fresh[frontier] as number;
        if (!completed.has(uid)) break;
        completed.delete(uid);
        lastseenuid = uid;
      }
    };
    const report = (force: boolean) => {
      if (!force && progress.done % PROGRESS_EVERY !== 0 && Date.now() - reportedAt < PROGRESS_EVERY_MS) return;
      reportedAt = Date.now();
      options.onProgress({ ...progress }, currentCursor());
    };
    const finish = (uid: number) => {
      completed.add(uid);
      progress.done += 1;
      advance();
      report(false);
    };
    const skip = (info: MessageInfo, reason: string) => {
      progress.skipped += 1;
      if (skippedMessages.length < SKIPPED_LISTED) skippedMessages.push({ mailbox: options.mailbox, uid: info.uid, size: info.size, reason });
      finish(info.uid);
    };
    report(true);

    const inFlight = new Set<Promise<void>>();
    const importOne = async (message: FetchedMessage) => {
      let skipped: string | null = null;
      try {
        await options.importMessage(message);
      } catch (err) {
        if (err instanceof SkipMessage) skipped = err.message;
        else {
          failed.add(message.uid);
          progress.failed += 1;
        }
      }
      if (skipped !== null) skip(message, skipped);
      else finish(message.uid);
      waitingFor("the next message");
    };
    const limit = options.maxMessageBytes;
    const wholeUpTo = Math.min(FETCH_PIECE_BYTES, limit);
    for (let at = 0; at < wanted.length; at += FETCH_BATCH) {
      const batch = wanted.slice(at, at + FETCH_BATCH);
      // Only rows for the UIDs asked, once each: a server answering with endless others gains nothing
      // (and makes no progress for the deadline).
      const infos = new Map<number, MessageInfo>();
      const asked = new Set(batch);
      waitingFor(`the sizes and flags of ${batch.length} message(s)`);
      for await (const row of client.fetch(batch.join(","), { uid: true, flags: true, labels: true, size: true }, { uid: true })) {
        if (typeof row.uid !== "number" || !asked.has(row.uid) || infos.has(row.uid)) continue;
        infos.set(row.uid, {
          uid: row.uid,
          size: typeof row.size === "number" ? row.size : null,
          flags: [...(row.flags ?? [])],
          labels: [...(row.labels ?? [])],
        });
        waitingFor(infos.size < batch.length ? `the sizes and flags of ${batch.length - infos.size} message(s)` : "the end of the answer to UID FETCH");
      }
      const wholeInfos: MessageInfo[] = [];
      const inPieces: MessageInfo[] = [];
      for (const info of infos.values()) {
        if (info.size !== null && info.size > limit)
          skip(info, `${byteSize(info.size)}, over the limit of ${byteSize(limit)} (CALIOPEN_IMAP_MAX_MESSAGE_SIZE)`);
        else if (info.size !== null && info.size <= wholeUpTo) wholeInfos.push(info);
        else inPieces.push(info);
      }

      for (const whole of wholeFetches(wholeInfos)) {
        waitingFor(`the bodies of ${whole.size} message(s)`);
        for await (const row of client.fetch([...whole.keys()].join(","), { uid: true, source: true }, { uid: true })) {
          const info = whole.get(row.uid);
          if (info === undefined) continue;
          whole.delete(row.uid);
          const source = row.source ?? Buffer.alloc(0);
          waitingFor(whole.size > 0 ? `the bodies of ${whole.size} message(s)` : "the end of the answer to UID FETCH");
          // The connection's literal cap keeps a lie small; a lie past the limit is still not imported.
          if (source.length > limit) {
            skip(
              info,
              `announced as ${byteSize(info.size ?? 0)} but ${byteSize(source.length)} were sent, over the limit of ${byteSize(limit)} (CALIOPEN_IMAP_MAX_MESSAGE_SIZE)`,
            );
            continue;
          }
          const running = importOne({ ...info, uidvalidity: validity, source }).finally(() => inFlight.delete(running));
          inFlight.add(running);
          if (inFlight.size >= options.concurrency) await Promise.race(inFlight);
        }
      }

      // One at a time: a download holds the connection until its raw is stored.
      for (const info of inPieces) {
        waitingFor(`the body of UID ${info.uid}`);
        const download = await client.download(String(info.uid), undefined, { uid: true, chunkSize: FETCH_PIECE_BYTES });
        // Expunged meanwhile: done, as below.
        if (download.content === undefined) continue;
        await importOne({ ...info, uidvalidity: validity, source: bodyInPieces(download.content, info, limit, waitingFor) });
        // An import that failed before reading the body must not leave the download holding the connection.
        download.content.destroy();
      }
    }
    unlock();
    options.fetched?.();
    if (inFlight.size > 0) waitingFor(`the import of the last ${inFlight.size} message(s)`);
    await Promise.all(inFlight);
    // A UID expunged between SEARCH and FETCH is simply done.
    for (const uid of wanted) completed.add(uid);
    advance();
    report(true);
    return { ...progress, cursor: currentCursor(), skipped_messages: skippedMessages };
  } finally {
    unlock();
  }
}

/** A body as its pieces arrive, refused (SkipMessage) as soon as it passes the limit, whatever was announced. */
async function* bodyInPieces(content: Readable, info: MessageInfo, limit: number, waitingFor: (step: string) => void): AsyncIterable<Uint8Array> {
  let size = 0;
  const announced = info.size === null ? "announced without a size" : `announced as ${byteSize(info.size)}`;
  try {
    for await (const piece of content as AsyncIterable<Buffer>) {
      size += piece.length;
      if (size > limit) throw new SkipMessage(`${announced} but more than ${byteSize(limit)} were sent, over the limit (CALIOPEN_IMAP_MAX_MESSAGE_SIZE)`);
      waitingFor(`the body of UID ${info.uid} (${byteSize(size)} so far)`);
      yield piece;
    }
  } catch (err) {
    // imapflow's own bound: a server still sending pieces well past the size it announced.
    if ((err as { code?: string }).code === "DownloadOverflow") throw new SkipMessage(`${announced} but the server kept sending past ${byteSize(size)}`);
    throw err;
  } finally {
    // Stops the download when the body is refused or its store failed.
    content.destroy();
  }
}
