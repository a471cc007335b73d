// The messaging metrics, all named here (the runtime's own are in runtime/metrics.ts, which knows nothing
// of mail): messages imported per source and how long an import takes, and the inbound SMTP server's
// sessions and refusals. Labels are sources, SMTP stages and reply codes: fixed, small sets.
import { Counter, Histogram, type Registry } from "prom-client";
import { batchResults } from "../actors/inbound/inbound-batch.ts";
import type { SmtpMetrics, SmtpStage } from "../actors/mail/inbound-smtp-server.ts";
import type { OrderContext } from "../runtime/orders.ts";
import type { Reply } from "../runtime/reply.ts";

export const MAIL_METRIC_NAMES = {
  imported: "caliopen_messages_imported_total",
  importFailures: "caliopen_message_import_failures_total",
  importSeconds: "caliopen_message_import_seconds",
  smtpSessions: "caliopen_smtp_sessions_total",
  smtpRefusals: "caliopen_smtp_refusals_total",
} as const;

/** Where a message came from: an IMAP account's sync, the inbound SMTP server (or an SMTP bridge's process_inbound), a Twitter DM sync. */
export type ImportSource = "imap" | "smtp" | "twitter";

/** The reply codes the inbound server answers with; any other is counted as "other". */
const SMTP_CODES = new Set([421, 450, 451, 452, 550, 552, 554]);

// An import is a store write and a parse: milliseconds, up to the 15 s a batch may wait.
const IMPORT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15];

export class MailMetrics {
  private readonly imported: Counter<"source">;
  private readonly failures: Counter<"source">;
  private readonly seconds: Histogram<"source">;
  private readonly sessions: Counter;
  private readonly refusals: Counter<"stage" | "code">;

  constructor(registry: Registry) {
    const registers = [registry];
    this.imported = new Counter({ name: MAIL_METRIC_NAMES.imported, help: "Messages imported, by source", labelNames: ["source"], registers });
    this.failures = new Counter({
      name: MAIL_METRIC_NAMES.importFailures,
      help: "Messages whose import failed or was refused, by source",
      labelNames: ["source"],
      registers,
    });
    this.seconds = new Histogram({
      name: MAIL_METRIC_NAMES.importSeconds,
      help: "Time from asking a message's import to its reply, by source (a batch's time for each of its messages)",
      labelNames: ["source"],
      buckets: IMPORT_BUCKETS,
      registers,
    });
    this.sessions = new Counter({ name: MAIL_METRIC_NAMES.smtpSessions, help: "Inbound SMTP sessions admitted", registers });
    this.refusals = new Counter({
      name: MAIL_METRIC_NAMES.smtpRefusals,
      help: "Inbound SMTP refusals, by stage (connect, rcpt, data) and reply code",
      labelNames: ["stage", "code"],
      registers,
    });
    for (const source of ["imap", "smtp", "twitter"] as const) {
      this.imported.inc({ source }, 0);
      this.failures.inc({ source }, 0);
    }
  }

  /** One message's import, timed and counted by its reply. */
  async importOne<R extends Reply | undefined>(source: ImportSource, run: () => Promise<R>): Promise<R> {
    const started = performance.now();
    try {
      const reply = await run();
      // No reply: a published order only handed to the actor, not imported yet (nothing to time).
      if (reply !== undefined) this.count(source, reply.error ? 0 : 1, reply.error ? 1 : 0, started);
      return reply;
    } catch (err) {
      this.count(source, 0, 1, started);
      throw err;
    }
  }

  /** A batch of `size` messages imported in one request: each raw's own reply counts. */
  async importBatch(source: ImportSource, size: number, run: () => Promise<unknown>): Promise<unknown> {
    const started = performance.now();
    try {
      const reply = await run();
      const results = batchResults(reply, size);
      const ok = results?.filter((result) => !result.error).length ?? 0;
      this.count(source, ok, size - ok, started, size);
      return reply;
    } catch (err) {
      this.count(source, 0, size, started, size);
      throw err;
    }
  }

  /** An order handler that imports one message (process_inbound), timed and counted. */
  importHandler<P>(
    source: ImportSource,
    handle: (payload: P, context: OrderContext) => Promise<Reply | undefined>,
  ): (payload: P, context: OrderContext) => Promise<Reply | undefined> {
    return (payload, context) => this.importOne(source, () => handle(payload, context));
  }

  /** What the inbound SMTP server reports. */
  readonly smtp: SmtpMetrics = {
    sessionAdmitted: () => this.sessions.inc(),
    refused: (stage: SmtpStage, code: number | undefined) =>
      this.refusals.inc({ stage, code: code !== undefined && SMTP_CODES.has(code) ? String(code) : "other" }),
  };

  private count(source: ImportSource, imported: number, failed: number, started: number, messages = 1): void {
    if (imported > 0) this.imported.inc({ source }, imported);
    if (failed > 0) this.failures.inc({ source }, failed);
    const seconds = (performance.now() - started) / 1_000;
    for (let i = 0; i < messages; i++) this.seconds.observe({ source }, seconds);
  }
}
