// The one IMAP connection of an account, shared by its worker's new-mail watch and its syncs.
//
// Watching: the connection stays on the watched mailbox (EXAMINE, read-only) and imapflow enters IDLE by
// itself once it is quiet; a new message (EXISTS) calls `onNewMail`, a lost connection is opened again
// after a growing pause. Syncing: a sync borrows the same connection. imapflow ends IDLE (DONE) before
// any command it is given and enters it again once the connection is quiet (ImapFlow.run → preCheck,
// and autoidle() after every command and lock release), so the sync only has to take the mailbox lock,
// and give the connection back: it is back on the watched mailbox and IDLE right after. One connection
// per account instead of two, and no TCP + TLS + LOGIN per sync.
//
// Without a watch (push off, or paused while syncs fail) a sync opens the connection and leaves it open
// for `keepUnwatchedMs`, for a sync right behind it (a coalesced one, a retry, a fullfetch asked after
// a sync), then logs out: a polled account is synced every few minutes at best, and an idle connection
// held that long costs the provider a process and counts against its per-user connection limit, which
// is what push is for.
//
// A connection a sync gives back as not reusable (it failed, or was cancelled halfway through an answer)
// is closed: the next user opens a fresh one. When the watch stops (its syncs fail, or the worker
// stops) the connection is kept like any unwatched one: a worker stopped or passivated leaves it open
// for `keepUnwatchedMs` at most. The credentials stay in `open`: never held here.
import type { ImapFlow } from "imapflow";
import { type BackoffPolicy, backoffDelay } from "../../runtime/backoff.ts";
import { closeImap } from "./imap-connection.ts";

export interface AccountConnectionSettings {
  /**
   * Opens a logged-in connection (through the destination policy and the node's connect pacer);
   * `onTurn` once the pacer lets it connect.
   */
  open(signal: AbortSignal, onTurn: () => void): Promise<ImapFlow>;
  /** How long a connection nobody watches stays open after a sync, for the next one. */
  keepUnwatchedMs: number;
  /** How long a LOGOUT may take before the socket is closed anyway. */
  logoutWithinMs: number;
}

export interface MailboxWatcher {
  mailbox: string;
  onNewMail(): void;
  onTrouble(error: Error, retryInMs: number): void;
}

/** The connection, lent to one sync until it gives it back. */
export interface ImapLease {
  readonly client: ImapFlow;
  /** Open before this sync asked for it (the watch's, or kept from the last sync): it may have died quietly. */
  readonly reused: boolean;
  /** `reusable`: the sync ended between commands, the connection is in a known state. */
  giveBack(reusable: boolean): void;
}

const RECONNECT: BackoffPolicy = { initialMs: 1_000, maxMs: 5 * 60_000, factor: 2, jitter: 0.2 };

export class AccountConnection {
  private client: ImapFlow | null = null;
  private opening: Promise<ImapFlow> | null = null;
  private lent = false;
  private watcher: MailboxWatcher | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private keepTimer: NodeJS.Timeout | null = null;
  private watchFailures = 0;
  /** New mail was announced while nobody watched: the watch, when it starts, looks once. */
  private heardUnwatched = false;
  /** Gives up the connect in progress (the sync that asked for it gave up: a login that never ends). */
  private openingAbort: AbortController | null = null;

  constructor(private readonly settings: AccountConnectionSettings) {}

  /** Keeps the connection open on `watcher.mailbox` and calls it on new mail, until unwatch(). */
  watch(watcher: MailboxWatcher): void {
    this.watcher = watcher;
    this.watchFailures = 0;
    this.clearKeepTimer();
    // A connection a sync just gave back on the mailbox was looking at it until now; any other may
    // have missed mail.
    const catchUp = this.client?.usable !== true || (this.client.mailbox !== false && this.client.mailbox.path !== watcher.mailbox) || this.heardUnwatched;
    this.heardUnwatched = false;
    void this.attachWatch(catchUp);
  }

  /**
   * Stops watching: the connection is kept for the next sync as any unwatched one (the watch pauses
   * while syncs fail, and a failure elsewhere, the store's, leaves the connection good for the retry).
   */
  unwatch(): void {
    this.watcher = null;
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.settle();
  }

  /**
   * The connection for one sync (opened if there is none; `onTurn` when that connect's turn comes);
   * rejects if `signal` aborts first.
   */
  async borrow(signal: AbortSignal, onTurn: () => void = () => undefined): Promise<ImapLease> {
    signal.throwIfAborted();
    if (this.lent) throw new Error("the IMAP connection is already lent to a sync");
    this.lent = true;
    this.clearKeepTimer();
    try {
      const reused = this.client?.usable === true;
      const client = await untilAborted(this.connection(onTurn), signal);
      return this.lease(client, reused);
    } catch (err) {
      this.lent = false;
      // Nobody else may ever need a connect that outlived the sync's deadline (a server trickling its
      // answer to LOGIN): given up, the watch tries again after its pause.
      this.openingAbort?.abort(err);
      this.settle();
      throw err;
    }
  }

  private lease(client: ImapFlow, reused: boolean): ImapLease {
    let given = false;
    return {
      client,
      reused,
      giveBack: (reusable) => {
        if (given) return;
        given = true;
        this.lent = false;
        if (!reusable || this.client !== client) {
          if (this.client === client) this.client = null;
          client.close();
          // The watch, if it goes on, needs a connection again.
          this.retryWatch(new Error("the IMAP connection was closed after a sync that did not end cleanly"));
        }
        this.settle();
      },
    };
  }

  /** The open connection, or the one being opened, or a new one (`onTurn` for that one only). */
  private connection(onTurn: () => void = () => undefined): Promise<ImapFlow> {
    if (this.client?.usable) return Promise.resolve(this.client);
    if (this.opening !== null) return this.opening;
    const abort = new AbortController();
    const signal = abort.signal;
    const opening = this.settings
      .open(signal, onTurn)
      .then((client) => {
        if (signal.aborted) {
          this.logout(client);
          throw signal.reason;
        }
        this.adopt(client);
        return client;
      })
      .finally(() => {
        if (this.opening === opening) {
          this.opening = null;
          this.openingAbort = null;
        }
      });
    this.openingAbort = abort;
    this.opening = opening;
    return opening;
  }

  private adopt(client: ImapFlow): void {
    this.client = client;
    client.on("exists", (update: { path: string; count: number; prevCount: number }) => {
      // Only news of the watched mailbox: a sync elsewhere would otherwise ask for a useless one.
      if (this.client !== client || update.count <= update.prevCount) return;
      if (this.watcher === null) this.heardUnwatched = true;
      else if (update.path === this.watcher.mailbox) this.watcher.onNewMail();
    });
    client.on("close", () => {
      if (this.client !== client) return;
      this.client = null;
      this.clearKeepTimer();
      this.retryWatch(new Error("the IMAP connection was closed"));
    });
    // Nobody may be waiting for it any more (the sync that asked gave up): settle() decides.
    if (!this.lent) this.settle();
  }

  /** What a connection nobody is using becomes: watching, kept for a while, or nothing. */
  private settle(): void {
    if (this.lent) return;
    const client = this.client;
    if (client === null) return;
    if (this.watcher !== null) {
      // A sync that ended on another folder did not hear of new mail in the watched one meanwhile (a
      // connection just opened, on no folder yet, is the watch's own: it looks already).
      void this.attachWatch(client.mailbox !== false && client.mailbox.path !== this.watcher.mailbox);
      return;
    }
    if (this.keepTimer !== null) return;
    this.keepTimer = setTimeout(() => {
      this.keepTimer = null;
      if (this.client !== client || this.lent || this.watcher !== null) return;
      this.client = null;
      this.logout(client);
    }, this.settings.keepUnwatchedMs);
    this.keepTimer.unref();
  }

  /**
   * Puts the connection on the watched mailbox (opening one if needed); IDLE follows by itself.
   * `catchUp`: the watch starts, or its connection was lost: mail may have come meanwhile.
   */
  private async attachWatch(catchUp: boolean): Promise<void> {
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const watcher = this.watcher;
    if (watcher === null) return;
    let client: ImapFlow | null = null;
    try {
      client = await this.connection();
      // A sync has it, and is looking at the mailbox: giving it back brings it here again.
      if (this.lent || this.watcher !== watcher) return;
      const lock = await client.getMailboxLock(watcher.mailbox, { readOnly: true });
      lock.release();
      if (this.watcher !== watcher) return;
      this.watchFailures = 0;
      // One more look for what came before the mailbox was open: an incremental sync that finds
      // nothing new costs one SEARCH (on this connection).
      if (catchUp) watcher.onNewMail();
    } catch (err) {
      if (client !== null && this.client === client) {
        // A mailbox the server refuses to open: this connection is of no use to the watch.
        this.client = null;
        client.close();
      }
      this.retryWatch(err as Error);
    }
  }

  private retryWatch(error: Error): void {
    if (this.watcher === null || this.reconnectTimer !== null) return;
    this.watchFailures += 1;
    const delay = backoffDelay(RECONNECT, this.watchFailures);
    this.watcher.onTrouble(error, delay);
    this.reconnectTimer = setTimeout(() => void this.attachWatch(true), delay);
  }

  private clearKeepTimer(): void {
    if (this.keepTimer !== null) clearTimeout(this.keepTimer);
    this.keepTimer = null;
  }

  private logout(client: ImapFlow): void {
    void closeImap(client);
    // A server that never answers LOGOUT does not keep the socket.
    setTimeout(() => client.close(), this.settings.logoutWithinMs).unref();
  }
}

/** `promise`, or the signal's reason as soon as it aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (signal.aborted) reject(signal.reason);
    const aborted = () => reject(signal.reason);
    signal.addEventListener("abort", aborted, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", aborted));
  });
}
