// Who may hold a connection to the inbound SMTP server, and for how long. A peer that opens connections
// and then says nothing, or trickles a byte at a time (slowloris), would otherwise hold every socket the
// node has. Three bounds:
// - per client (an IPv4 address, or an IPv6 /64, which one host can fill): a connection past
//   `maxPerClient` is refused with a 421 at once;
// - in all (`maxClients`): a newcomer past it makes the session idle longest close (421) — one that is
//   not in a transaction (no MAIL FROM since its greeting or its last message), so a flood of idle
//   connections cannot keep a sender out, and a message being sent is never cut; when every session is
//   in a transaction, the newcomer is refused (421, the sending MTA retries);
// - in time: a session has `transactionTimeoutMs` from its greeting, or from the reply to its previous
//   message, to the end of its next message's DATA (the idle timeout alone restarts at every byte).
// What the server then does with a received message (storing, process_inbound) is not counted.
// Each refusal is logged at debug level only (a flood would otherwise flood the log too), and a summary
// at warn level at most once a minute.
import { isIPv4, isIPv6 } from "node:net";
import type { Logger } from "pino";
import type { SMTPServer, SMTPServerSession } from "smtp-server";

export interface ConnectionLimits {
  maxClients: number;
  maxPerClient: number;
  transactionTimeoutMs: number;
}

/** A refusal at connection time: smtp-server answers it with its responseCode and closes. */
export class ConnectionRefused extends Error {
  readonly responseCode = 421;
}

interface Held {
  session: SMTPServerSession;
  client: string;
  /** When it was greeted or its last message answered: the oldest idle one makes room first. */
  since: number;
  deadline: NodeJS.Timeout | null;
}

export class SmtpConnectionGuard {
  /** Sessions admitted and not yet closed, by session id. */
  private readonly held = new Map<string, Held>();
  /** Live sessions per client; an entry goes with its last session, so this is bounded by maxClients. */
  private readonly perClient = new Map<string, number>();
  /** Since the last summary. */
  private counts = { refused_per_client: 0, refused_full: 0, closed_idle: 0, closed_timeout: 0 };
  private lastSummary = 0;

  constructor(
    private readonly server: SMTPServer,
    private readonly limits: ConnectionLimits,
    private readonly serverName: string,
    private readonly log: Logger,
  ) {}

  get size(): number {
    return this.held.size;
  }

  /** At connection (onConnect): admits the session, or throws the refusal to answer. */
  admit(session: SMTPServerSession): void {
    const client = clientOf(session.remoteAddress);
    const mine = this.perClient.get(client) ?? 0;
    if (mine >= this.limits.maxPerClient) {
      this.log.debug({ client: session.remoteAddress, connections: mine }, "connection refused: too many from this client");
      this.count("refused_per_client");
      throw new ConnectionRefused(`${this.serverName} too many connections from your address, try again later`);
    }
    if (this.held.size >= this.limits.maxClients && !this.closeIdlest()) {
      this.log.debug({ client: session.remoteAddress, connections: this.held.size }, "connection refused: every session is in a transaction");
      this.count("refused_full");
      throw new ConnectionRefused(`${this.serverName} too many connections, try again later`);
    }
    this.perClient.set(client, mine + 1);
    const held: Held = { session, client, since: Date.now(), deadline: null };
    this.held.set(session.id, held);
    this.arm(held);
  }

  /** The session's connection closed (onClose). */
  release(session: SMTPServerSession): void {
    const held = this.held.get(session.id);
    if (held === undefined) return;
    this.held.delete(session.id);
    if (held.deadline !== null) clearTimeout(held.deadline);
    const left = (this.perClient.get(held.client) ?? 1) - 1;
    if (left > 0) this.perClient.set(held.client, left);
    else this.perClient.delete(held.client);
  }

  /** The message's DATA is in: its processing is not the client's time. */
  received(session: SMTPServerSession): void {
    const held = this.held.get(session.id);
    if (held?.deadline) clearTimeout(held.deadline);
    if (held !== undefined) held.deadline = null;
  }

  /** The message was answered: the session is idle again, with a new deadline for its next one. */
  answered(session: SMTPServerSession): void {
    const held = this.held.get(session.id);
    if (held === undefined) return;
    held.since = Date.now();
    this.arm(held);
  }

  /** At shutdown: closes every session that is not in a transaction. */
  closeIdle(): void {
    for (const held of [...this.held.values()]) {
      if (!inTransaction(held.session)) this.close(held, "shutting down");
    }
  }

  private arm(held: Held): void {
    if (held.deadline !== null) clearTimeout(held.deadline);
    held.deadline = setTimeout(() => {
      held.deadline = null;
      this.log.debug(
        { client: held.session.remoteAddress, transaction: inTransaction(held.session) },
        "connection closed: no message completed within the transaction timeout",
      );
      this.count("closed_timeout");
      this.close(held, "transaction timeout, closing connection");
    }, this.limits.transactionTimeoutMs);
    held.deadline.unref();
  }

  /** Closes the session idle longest, if any session is idle; whether one was. */
  private closeIdlest(): boolean {
    let idlest: Held | null = null;
    for (const held of this.held.values()) {
      if (!inTransaction(held.session) && (idlest === null || held.since < idlest.since)) idlest = held;
    }
    if (idlest === null) return false;
    this.log.debug({ client: idlest.session.remoteAddress, idle_ms: Date.now() - idlest.since }, "idle connection closed to make room");
    this.count("closed_idle");
    this.close(idlest, "too many connections, closing idle ones");
    return true;
  }

  private count(what: keyof SmtpConnectionGuard["counts"]): void {
    this.counts[what]++;
    const now = Date.now();
    if (now - this.lastSummary < 60_000) return;
    this.log.warn(
      { ...this.counts, held: this.held.size, clients: this.perClient.size, limits: this.limits },
      "SMTP connections refused or closed by the connection limits",
    );
    this.counts = { refused_per_client: 0, refused_full: 0, closed_idle: 0, closed_timeout: 0 };
    this.lastSummary = now;
  }

  /** Answers 421 and closes (smtp-server closes after any 421); the session stops counting at once. */
  private close(held: Held, reason: string): void {
    this.release(held.session);
    for (const connection of this.server.connections) {
      if (connection.session === held.session) {
        connection.send(421, `${this.serverName} ${reason}`);
        return;
      }
    }
  }
}

function inTransaction(session: SMTPServerSession): boolean {
  return Boolean(session.envelope?.mailFrom);
}

/** What counts as one client: an IPv4 address, or the /64 of an IPv6 one (a host's usual share). */
export function clientOf(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1] as string;
  if (isIPv4(address) || !isIPv6(address)) return address;
  const [head = "", tail = ""] = address.toLowerCase().split("::");
  const front = head === "" ? [] : head.split(":");
  const back = tail === "" ? [] : tail.split(":");
  const groups = address.includes("::") ? [...front, ...Array(8 - front.length - back.length).fill("0"), ...back] : front;
  return `${groups
    .slice(0, 4)
    .map((group) => group.replace(/^0+(?=.)/, ""))
    .join(":")}::/64`;
}
