// The SMTP bridge's inbound half (docs/decisions.md §4 smtp-bridge): an SMTP server that takes mail for the
// platform's local addresses only (never an open relay), within a size, a header-block and a recipient
// limit. Each message is stored once with a Received trace field prepended (RFC 5321 §4.4), and imported
// for every recipient in parallel, by the recipient's inbound actor, exactly as `process_inbound` on
// inboundSMTP would (the node sends it `import_batch`, gathering mail for one recipient that arrives on
// several sessions at the same moment). 250 only when every recipient was processed; otherwise a
// temporary 451 so that the MTA retries. A retry (the same bytes for the same
// recipients) reuses the raw stored the first time, with its first Received line: the raw is keyed by the
// bytes as received and the recipients, not by the trace, which holds the time.
//
// Against hostile peers: connections are bounded in all, per client and in time (smtp-connection-guard.ts),
// a silent client is dropped after the idle timeout, and STARTTLS is offered when a certificate is set.

import type { Logger } from "pino";
import { SMTPServer, type SMTPServerAddress, type SMTPServerDataStream, type SMTPServerSession } from "smtp-server";
import type { Reply } from "../../runtime/reply.ts";
import type { InboundOrder } from "../messages/inbound-import.ts";
import type { Identity } from "../store/model.ts";
import type { Store } from "../store/store.ts";
import { HeaderBlockSize } from "./header-block-size.ts";
import { LocalRecipients } from "./local-recipients.ts";
import { MAX_HEADER_BYTES } from "./parse-mail-stream.ts";
import { newlineOf, receivedHeader } from "./received-header.ts";
import { SmtpConnectionGuard } from "./smtp-connection-guard.ts";

export interface InboundSmtpDeps {
  store: Store;
  /** Imports the raw (`size` bytes as stored) for one recipient: the reply `process_inbound` would give. */
  importRaw(order: InboundOrder, size: number): Promise<Reply>;
  logger: Logger;
  /** Counts sessions and refusals (the node's metrics); none when left out. */
  metrics?: SmtpMetrics;
}

/** Where in a session a refusal is answered. */
export type SmtpStage = "connect" | "rcpt" | "data";

export interface SmtpMetrics {
  sessionAdmitted(): void;
  /** `code`: the reply code answered (421, 550, ...). */
  refused(stage: SmtpStage, code: number | undefined): void;
}

export interface InboundSmtpOptions {
  /** Address to listen on. */
  host: string;
  /** 0: any free port (the one chosen is returned). */
  port: number;
  /** Largest message accepted, in bytes (advertised with SIZE). */
  maxSize: number;
  /** Most recipients accepted in one transaction. */
  maxRecipients: number;
  /** The name in the greeting, the EHLO reply and the Received field. */
  serverName: string;
  /** Sessions held at once; past it the one idle longest makes room (CALIOPEN_SMTP_MAX_CLIENTS). */
  maxClients?: number;
  /** Sessions held at once by one client address, an IPv6 /64 (CALIOPEN_SMTP_MAX_CLIENTS_PER_IP). */
  maxClientsPerIp?: number;
  /** A client that owes us a command and sends nothing this long is disconnected (CALIOPEN_SMTP_IDLE_TIMEOUT_MS). */
  idleTimeoutMs?: number;
  /** From the greeting or the previous message to the end of the next DATA (CALIOPEN_SMTP_TRANSACTION_TIMEOUT_MS). */
  transactionTimeoutMs?: number;
  /** Offer STARTTLS with this key and certificate chain (PEM); null or absent: not offered. */
  tls?: { key: string; cert: string } | null;
}

export const INBOUND_SMTP_DEFAULTS = {
  maxClients: 500,
  maxClientsPerIp: 20,
  idleTimeoutMs: 60_000,
  transactionTimeoutMs: 300_000,
};

/** At shutdown, how long a message being received or processed may take before its connection is cut. */
const CLOSE_TIMEOUT_MS = 10_000;

export interface InboundSmtpServer {
  port: number;
  close(): Promise<void>;
}

class SmtpReply extends Error {
  constructor(
    readonly responseCode: number,
    message: string,
  ) {
    super(message);
  }
}

const TEMPORARY_FAILURE = "temporary failure, please retry";

export async function startInboundSmtp(deps: InboundSmtpDeps, options: InboundSmtpOptions): Promise<InboundSmtpServer> {
  const log = deps.logger.child({ service: "smtp-inbound" });
  const limits = {
    maxClients: options.maxClients ?? INBOUND_SMTP_DEFAULTS.maxClients,
    maxClientsPerIp: options.maxClientsPerIp ?? INBOUND_SMTP_DEFAULTS.maxClientsPerIp,
    idleTimeoutMs: options.idleTimeoutMs ?? INBOUND_SMTP_DEFAULTS.idleTimeoutMs,
    transactionTimeoutMs: options.transactionTimeoutMs ?? INBOUND_SMTP_DEFAULTS.transactionTimeoutMs,
  };
  const tls = options.tls ?? null;
  /** The local identities behind each accepted recipient, per transaction (envelope). */
  const resolved = new WeakMap<object, Map<string, Identity[]>>();
  const localRecipients = new LocalRecipients(deps.store);
  const metrics = deps.metrics;
  const codeOf = (err: unknown) => (err instanceof Error && "responseCode" in err && typeof err.responseCode === "number" ? err.responseCode : undefined);

  const server = new SMTPServer({
    name: options.serverName,
    banner: "Caliopen ready",
    size: options.maxSize,
    // Past the size, smtp-server itself answers 552 5.3.4 whatever onData says.
    rejectOversized: true,
    maxRecipients: options.maxRecipients,
    disabledCommands: tls === null ? ["AUTH", "STARTTLS"] : ["AUTH"],
    hideSTARTTLS: tls === null,
    ...(tls !== null && { key: tls.key, cert: tls.cert }),
    authOptional: true,
    // Enhanced status codes (RFC 2034/3463): 550 5.1.1, 452 4.5.3, 552 5.3.4, 451 4.3.0, 250 2.6.0.
    hideENHANCEDSTATUSCODES: false,
    disableReverseLookup: true,
    logger: false,
    // The guard counts greeted sessions; this bounds the ones not greeted yet (smtp-server answers 421).
    maxClients: 2 * limits.maxClients,
    socketTimeout: limits.idleTimeoutMs,
    closeTimeout: CLOSE_TIMEOUT_MS,

    onConnect(session, callback) {
      try {
        guard.admit(session);
        metrics?.sessionAdmitted();
        callback();
      } catch (err) {
        metrics?.refused("connect", codeOf(err));
        callback(err as Error);
      }
    },

    onClose(session) {
      guard.release(session);
    },

    onRcptTo(address, session, callback) {
      recipientCheck(address, session).then(
        () => callback(),
        (err: unknown) => {
          const reply = err instanceof SmtpReply ? err : temporary(err, "recipient lookup failed");
          metrics?.refused("rcpt", reply.responseCode);
          callback(reply);
        },
      );
    },

    onData(stream, session, callback) {
      receive(stream, session).then(
        (message) => {
          guard.answered(session);
          callback(null, message);
        },
        (err: unknown) => {
          guard.answered(session);
          const reply = err instanceof SmtpReply ? err : temporary(err, "message handling failed");
          metrics?.refused("data", reply.responseCode);
          callback(reply);
        },
      );
    },
  });
  const guard = new SmtpConnectionGuard(
    server,
    { maxClients: limits.maxClients, maxPerClient: limits.maxClientsPerIp, transactionTimeoutMs: limits.transactionTimeoutMs },
    options.serverName,
    log,
  );

  function temporary(err: unknown, what: string): SmtpReply {
    log.error({ err }, what);
    return new SmtpReply(451, TEMPORARY_FAILURE);
  }

  async function recipientCheck(address: SMTPServerAddress, session: SMTPServerSession): Promise<void> {
    const wanted = address.address.trim().toLowerCase();
    const identities = await localRecipients.lookup(wanted);
    if (identities.length === 0) {
      log.info({ client: session.remoteAddress, recipient: wanted }, "recipient refused: not a local address");
      throw new SmtpReply(550, `<${wanted}>: no such user here`);
    }
    let map = resolved.get(session.envelope);
    if (map === undefined) {
      map = new Map();
      resolved.set(session.envelope, map);
    }
    map.set(wanted, identities);
  }

  async function receive(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<string> {
    const chunks: Buffer[] = [];
    let size = 0;
    const header = new HeaderBlockSize();
    let headerTooBig = false;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (!headerTooBig && !header.update(chunk, MAX_HEADER_BYTES)) headerTooBig = true;
      // Past a limit the rest is read and dropped (past the size, smtp-server answers 552 5.3.4 itself).
      if (!stream.sizeExceeded && !headerTooBig) chunks.push(chunk);
    }
    guard.received(session);
    const trace = {
      session: session.id,
      client: session.remoteAddress,
      helo: session.hostNameAppearsAs,
      mail_from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
      recipients: session.envelope.rcptTo.map((r) => r.address.toLowerCase()),
      size,
    };
    if (stream.sizeExceeded) {
      log.info(trace, "message refused: too big");
      throw new SmtpReply(552, "message too big");
    }
    if (headerTooBig) {
      // The parser could never read it: a retry would fail the same way, so refuse it for good.
      log.info({ ...trace, header_bytes: header.cost }, "message refused: header block too big");
      throw new SmtpReply(554, `header block over ${MAX_HEADER_BYTES} bytes`);
    }
    const bytes = Buffer.concat(chunks, size);
    const map = resolved.get(session.envelope) ?? new Map<string, Identity[]>();
    const recipients = [...map.keys()].sort();
    const received = receivedHeader(
      {
        helo: session.hostNameAppearsAs,
        remoteAddress: session.remoteAddress,
        by: options.serverName,
        protocol: session.transmissionType || (session.secure ? "ESMTPS" : "ESMTP"),
        id: session.id,
        recipients,
        date: new Date(),
      },
      newlineOf(bytes),
    );
    // Keyed by the bytes and the recipients: a retry finds its raw whatever the time in its trace.
    const { raw, existing } = await deps.store.raws.putOnce(null, bytes, { scope: recipients.join(","), trace: Buffer.from(received, "latin1") });

    const targets = [...map.values()].flat();
    const outcomes = await Promise.all(
      targets.map(async (identity) => {
        const order = { message_id: raw.raw_msg_id, remote_id: identity.identity_id, user_id: identity.user_id };
        try {
          const reply = await deps.importRaw(order, raw.size);
          return { identity, ok: reply.error === false, detail: reply.message };
        } catch (err) {
          return { identity, ok: false, detail: (err as Error).message ?? String(err) };
        }
      }),
    );
    const failed = outcomes.filter((outcome) => !outcome.ok);
    const summary = {
      ...trace,
      raw_msg_id: raw.raw_msg_id,
      raw_existing: existing,
      outcomes: outcomes.map((o) => ({ identity_id: o.identity.identity_id, user_id: o.identity.user_id, ok: o.ok, ...(!o.ok && { reason: o.detail }) })),
    };
    if (targets.length === 0 || failed.length > 0) {
      log.warn(summary, "message not processed for every recipient: 451, the sender will retry");
      throw new SmtpReply(451, TEMPORARY_FAILURE);
    }
    await deps.store.raws.markDelivered(raw.raw_msg_id);
    log.info(summary, "message received");
    return `message accepted as ${raw.raw_msg_id}`;
  }

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once("error", onError);
    server.listen(options.port, options.host, () => {
      server.off("error", onError);
      resolve();
    });
  });
  // Errors after start (a client resetting its connection) are the client's problem, not ours.
  server.on("error", (err: Error) => log.debug({ err: err.message }, "SMTP connection error"));
  const address = server.server.address();
  const port = typeof address === "object" && address !== null ? address.port : options.port;
  log.info(
    { host: options.host, port, maxSize: options.maxSize, maxRecipients: options.maxRecipients, ...limits, starttls: tls !== null },
    "inbound SMTP server listening",
  );

  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Idle sessions go now; one in a transaction gets CLOSE_TIMEOUT_MS to finish.
        guard.closeIdle();
      }),
  };
}
