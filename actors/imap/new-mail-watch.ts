// Push instead of polling: an IMAP connection kept open on the mailbox (IDLE, which imapflow enters by
// itself when the connection is quiet; servers without IDLE are polled with NOOP). A new message makes
// it call `onNewMail` within seconds; a lost connection is opened again after a growing pause.
import type { ImapFlow } from "imapflow";
import { type BackoffPolicy, backoffDelay } from "../../runtime/backoff.ts";
import { closeImap } from "./imap-connection.ts";

export interface MailWatch {
  stop(): void;
}

const RECONNECT: BackoffPolicy = { initialMs: 1_000, maxMs: 5 * 60_000, factor: 2, jitter: 0.2 };

export function watchMailbox(
  connect: () => Promise<ImapFlow>,
  mailbox: string,
  onNewMail: () => void,
  onTrouble: (error: Error, retryInMs: number) => void,
): MailWatch {
  let stopped = false;
  let client: ImapFlow | null = null;
  let timer: NodeJS.Timeout | null = null;
  let failures = 0;

  const retry = (error: Error) => {
    if (stopped) return;
    failures += 1;
    const delay = backoffDelay(RECONNECT, failures);
    onTrouble(error, delay);
    timer = setTimeout(() => void open(), delay);
  };

  const open = async () => {
    timer = null;
    if (stopped) return;
    try {
      const opened = await connect();
      if (stopped) return void closeImap(opened);
      client = opened;
      opened.on("exists", (update: { count: number; prevCount: number }) => {
        if (update.count > update.prevCount) onNewMail();
      });
      opened.on("close", () => {
        if (client === opened) client = null;
        retry(new Error("the IMAP connection was closed"));
      });
      await opened.mailboxOpen(mailbox, { readOnly: true });
      failures = 0;
      // Mail that arrived before the mailbox was open (or while the connection was down) is caught by
      // one more look: an incremental sync that finds nothing new costs one SEARCH.
      onNewMail();
    } catch (err) {
      retry(err as Error);
    }
  };

  void open();
  return {
    stop() {
      stopped = true;
      if (timer !== null) clearTimeout(timer);
      const open = client;
      client = null;
      if (open !== null) void closeImap(open);
    },
  };
}
