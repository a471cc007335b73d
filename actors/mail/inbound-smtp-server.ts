// The SMTP bridge's inbound half (DECISIONS.md §4 smtp-bridge): an SMTP server that takes mail for the
// platform's local addresses only (never an open relay), within a size and a recipient limit. Each
// message is stored once (by content, so a sending MTA retrying the same bytes reuses the raw) and
// `process_inbound` is requested for every recipient in parallel. 250 only when every recipient was
// processed; otherwise a temporary 451 so that the MTA retries (the retry is de-duplicated by
// Message-ID downstream, by the inbound processor).
//
// No trace header is added. A Received line must carry the time of receipt, so it would make every
// retry of one message different bytes and defeat `putOnce`, which recognises a retry by the hash of
// the bytes; the trace data (client address and HELO, MAIL FROM, recipients, time) is logged instead,
// and the stored raw is exactly what the sending MTA sent. (Hashing the bytes as received while storing
// them with a trace header prepended would need a store method keyed apart from the content.)
import { SMTPServer, type SMTPServerAddress, type SMTPServerDataStream, type SMTPServerSession } from "smtp-server";
import type { Logger } from "pino";
import type { Reply } from "../../runtime/reply.ts";
import type { Identity } from "../store/model.ts";
import type { Store } from "../store/store.ts";

export interface InboundOrder {
  /** The raw message's id. */
  message_id: string;
  /** The local identity that receives it. */
  remote_id: string;
  user_id: string;
}

export interface InboundSmtpDeps {
  store: Store;
  /** Requests `process_inbound` for one recipient (on inboundSMTP, in the node). */
  processInbound(order: InboundOrder): Promise<Reply>;
  logger: Logger;
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
  /** The name in the greeting and in the EHLO reply. */
  serverName: string;
}

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
  /** The local identities behind each accepted recipient, per transaction (envelope). */
  const resolved = new WeakMap<object, Map<string, Identity[]>>();

  const server = new SMTPServer({
    name: options.serverName,
    banner: "Caliopen ready",
    size: options.maxSize,
    // Past the size, smtp-server itself answers 552 5.3.4 whatever onData says.
    rejectOversized: true,
    maxRecipients: options.maxRecipients,
    disabledCommands: ["AUTH", "STARTTLS"],
    hideSTARTTLS: true,
    authOptional: true,
    // Enhanced status codes (RFC 2034/3463): 550 5.1.1, 452 4.5.3, 552 5.3.4, 451 4.3.0, 250 2.6.0.
    hideENHANCEDSTATUSCODES: false,
    disableReverseLookup: true,
    logger: false,

    onRcptTo(address, session, callback) {
      recipientCheck(address, session).then(
        () => callback(),
        (err: unknown) => callback(err instanceof SmtpReply ? err : temporary(err, "recipient lookup failed")),
      );
    },

    onData(stream, session, callback) {
      receive(stream, session).then(
        (message) => callback(null, message),
        (err: unknown) => callback(err instanceof SmtpReply ? err : temporary(err, "message handling failed")),
      );
    },
  });

  function temporary(err: unknown, what: string): SmtpReply {
    log.error({ err }, what);
    return new SmtpReply(451, TEMPORARY_FAILURE);
  }

  async function recipientCheck(address: SMTPServerAddress, session: SMTPServerSession): Promise<void> {
    const wanted = address.address.trim().toLowerCase();
    const identities = (await deps.store.identities.byIdentifier("email", wanted)).filter((identity) => identity.type === "local" && identity.status === "active");
    if (identities.length === 0) {
      log.info({ client: session.remoteAddress, recipient: wanted }, "recipient refused: not a local address");
      throw new SmtpReply(550, `<${wanted}>: no such user here`);
    }
    let map = resolved.get(session.envelope);
    if (map === undefined) resolved.set(session.envelope, (map = new Map()));
    map.set(wanted, identities);
  }

  async function receive(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<string> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      size += chunk.length;
      // Past the limit the rest is read and dropped: smtp-server answers 552 5.3.4 itself.
      if (!stream.sizeExceeded) chunks.push(chunk);
    }
    const trace = {
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
    const bytes = Buffer.concat(chunks, size);
    const { raw, existing } = await deps.store.raws.putOnce(null, bytes);

    const map = resolved.get(session.envelope) ?? new Map<string, Identity[]>();
    const targets = [...map.values()].flat();
    const outcomes = await Promise.all(
      targets.map(async (identity) => {
        const order = { message_id: raw.raw_msg_id, remote_id: identity.identity_id, user_id: identity.user_id };
        try {
          const reply = await deps.processInbound(order);
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
  log.info({ host: options.host, port, maxSize: options.maxSize, maxRecipients: options.maxRecipients }, "inbound SMTP server listening");

  return {
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
