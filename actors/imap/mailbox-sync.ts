// The sync algorithm (DECISIONS.md §4): the UIDs of the mailbox after the last one seen (all of them on a
// first sync, a changed UIDVALIDITY or a fullfetch), plus the UIDs that failed last time, fetched with
// BODY.PEEK[] in a read-only EXAMINE (nothing is ever marked \Seen on the server) and imported a few at a
// time. The cursor only moves past a UID once it is imported or remembered as failed, and failed UIDs
// are retried at the next sync: none is skipped for good.
import type { ImapFlow } from "imapflow";

export interface SyncCursor {
  /** The mailbox's UIDVALIDITY when lastseenuid was read (a BigInt, kept as a string). */
  uidvalidity: string | null;
  lastseenuid: number;
  failed_uids: number[];
}

export interface SyncProgress {
  total: number;
  done: number;
  failed: number;
}

export interface SyncOutcome extends SyncProgress {
  cursor: SyncCursor;
}

export interface FetchedMessage {
  uid: number;
  source: Buffer;
  flags: string[];
  labels: string[];
}

export interface SyncOptions {
  mailbox: string;
  /** fullfetch: every message again (imports are de-duplicated downstream). */
  full: boolean;
  /** Messages imported at the same time. */
  concurrency: number;
  /** Imports one message; throws when it could not be imported. */
  importMessage(message: FetchedMessage): Promise<void>;
  /** Called now and then (and at the end) with the progress and the cursor as it may be saved. */
  onProgress(progress: SyncProgress, cursor: SyncCursor): void;
}

const FETCH_BATCH = 500;
const PROGRESS_EVERY = 100;
const PROGRESS_EVERY_MS = 1_000;

export async function syncMailbox(client: ImapFlow, cursor: SyncCursor, options: SyncOptions): Promise<SyncOutcome> {
  const lock = await client.getMailboxLock(options.mailbox, { readOnly: true });
  try {
    const mailbox = client.mailbox;
    if (mailbox === false) throw new Error(`mailbox ${options.mailbox} could not be opened`);
    const validity = String(mailbox.uidValidity);
    const restart = options.full || cursor.uidvalidity !== validity;
    const after = restart ? 0 : cursor.lastseenuid;
    // `N:*` always returns the last message, even below N: keep only the UIDs really after the cursor.
    const found = (await client.search({ uid: `${after + 1}:*` }, { uid: true })) || [];
    const fresh = [...new Set(found)].filter((uid) => uid > after).sort((a, b) => a - b);
    const retry = restart ? [] : cursor.failed_uids.filter((uid) => uid <= after);
    const wanted = [...retry, ...fresh];

    const progress: SyncProgress = { total: wanted.length, done: 0, failed: 0 };
    const completed = new Set<number>();
    const failed = new Set<number>();
    let lastseenuid = after;
    let reportedAt = Date.now();
    const currentCursor = (): SyncCursor => ({ uidvalidity: validity, lastseenuid, failed_uids: [...failed].sort((a, b) => a - b) });
    const advance = () => {
      // Past a UID only once every UID up to it is done (imported, or remembered as failed).
      for (const uid of fresh) {
        if (uid <= lastseenuid) continue;
        if (!completed.has(uid)) break;
        lastseenuid = uid;
      }
    };
    const report = (force: boolean) => {
      if (!force && progress.done % PROGRESS_EVERY !== 0 && Date.now() - reportedAt < PROGRESS_EVERY_MS) return;
      reportedAt = Date.now();
      options.onProgress({ ...progress }, currentCursor());
    };
    report(true);

    const inFlight = new Set<Promise<void>>();
    const importOne = async (message: FetchedMessage) => {
      try {
        await options.importMessage(message);
      } catch {
        failed.add(message.uid);
        progress.failed += 1;
      }
      completed.add(message.uid);
      progress.done += 1;
      advance();
      report(false);
    };
    for (let at = 0; at < wanted.length; at += FETCH_BATCH) {
      const batch = wanted.slice(at, at + FETCH_BATCH);
      for await (const message of client.fetch(batch.join(","), { uid: true, flags: true, source: true, labels: true }, { uid: true })) {
        const fetched: FetchedMessage = {
          uid: message.uid,
          source: message.source ?? Buffer.alloc(0),
          flags: [...(message.flags ?? [])],
          labels: [...(message.labels ?? [])],
        };
        const running = importOne(fetched).finally(() => inFlight.delete(running));
        inFlight.add(running);
        if (inFlight.size >= options.concurrency) await Promise.race(inFlight);
      }
    }
    await Promise.all(inFlight);
    // A UID expunged between SEARCH and FETCH is simply done.
    for (const uid of wanted) completed.add(uid);
    advance();
    report(true);
    return { ...progress, cursor: currentCursor() };
  } finally {
    lock.release();
  }
}
