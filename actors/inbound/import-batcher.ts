// Gathers stored raws (an IMAP sync's, the mail the SMTP server receives) into import batches for the
// user's inbound actor (inbound-batch.ts): one request per batch instead of one `process_inbound` per
// mail. A batch is sent once it names MAX_BATCH_RAWS raws or MAX_BATCH_RAW_BYTES of them, or when no raw
// joined it for a moment (the end of a mailbox, a large message streamed alone, an SMTP client waiting). Each raw's promise settles with its own reply; a batch that
// got no usable answer fails all of its raws (they are retried at the next sync, as a failed
// `process_inbound` would be).
import type { Reply } from "../../runtime/reply.ts";
import { batchResults, MAX_BATCH_RAW_BYTES, MAX_BATCH_RAWS } from "./inbound-batch.ts";
import { DEFAULT_INBOUND_OPTIONS } from "./inbound-processor.ts";

/** Sends one batch (its raws' ids, in order); resolves with the actor's reply (any JSON). */
export type SendBatch = (rawIds: string[]) => Promise<unknown>;

export interface BatchLimits {
  maxRaws: number;
  maxBytes: number;
  /** When a batch that is not full goes. */
  timing: BatchTiming;
}

export type BatchTiming =
  /** Once no raw joined it for this long (raws that come in a stream: a sync). */
  | { lingerMs: number }
  /**
   * At once while fewer batches than this await their answer; past it, raws gather until one is answered
   * (senders that each wait for their raw's answer, as SMTP clients do: no wait when all is quiet, larger
   * batches as they come faster than they are imported).
   */
  | { maxInFlight: number };

/** A sync's raws come in a stream: a batch waits a little for the next ones. */
export const SYNC_BATCH_LIMITS: BatchLimits = { maxRaws: MAX_BATCH_RAWS, maxBytes: MAX_BATCH_RAW_BYTES, timing: { lingerMs: 5 } };
/**
 * An SMTP client waits for each message's answer before it sends the next: a message goes at once while
 * the inbound actor has room to import it (it imports that many orders side by side); past it, mail
 * gathers. Measured with 4 sessions: gathering behind 2 in flight made each message wait 2.9 ms for
 * its turn, against 0.9 ms this way.
 */
export const RECEIVED_BATCH_LIMITS: BatchLimits = {
  maxRaws: MAX_BATCH_RAWS,
  maxBytes: MAX_BATCH_RAW_BYTES,
  timing: { maxInFlight: DEFAULT_INBOUND_OPTIONS.concurrency },
};

interface Waiting {
  rawId: string;
  resolve(reply: Reply): void;
  reject(err: Error): void;
}

export class ImportBatcher {
  private waiting: Waiting[] = [];
  private bytes = 0;
  private timer: NodeJS.Timeout | null = null;
  /** Batches sent and not answered yet. */
  private unanswered = 0;
  /** Batches sent so far (for tests and logs). */
  sent = 0;

  constructor(
    private readonly send: SendBatch,
    private readonly limits: BatchLimits = SYNC_BATCH_LIMITS,
  ) {}

  /** Nothing waits to be sent or answered. */
  get idle(): boolean {
    return this.waiting.length === 0 && this.unanswered === 0;
  }

  /** The reply for this raw once its batch is answered. `bytes`: the raw's size, as stored. */
  import(rawId: string, bytes: number): Promise<Reply> {
    // A raw that would take the batch past its bytes goes into the next one.
    if (this.waiting.length > 0 && this.bytes + bytes > this.limits.maxBytes) this.flush();
    const reply = new Promise<Reply>((resolve, reject) => this.waiting.push({ rawId, resolve, reject }));
    this.bytes += bytes;
    const { timing } = this.limits;
    if (this.waiting.length >= this.limits.maxRaws || this.bytes >= this.limits.maxBytes) this.flush();
    else if ("lingerMs" in timing) {
      // Sent once raws stop coming for a moment (so at most maxRaws × lingerMs after its first).
      if (this.timer !== null) clearTimeout(this.timer);
      this.timer = setTimeout(() => this.flush(), timing.lingerMs);
    } else if (this.unanswered < timing.maxInFlight) this.flush();
    return reply;
  }

  /** Sends what is waiting now. */
  flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const batch = this.waiting;
    this.waiting = [];
    this.bytes = 0;
    if (batch.length === 0) return;
    this.sent += 1;
    this.unanswered += 1;
    void this.send(batch.map((waiting) => waiting.rawId)).then(
      (reply) => {
        this.answered();
        const results = batchResults(reply, batch.length);
        if (results === null) {
          const why = isFailure(reply) ? reply.message : "no usable reply";
          for (const waiting of batch) waiting.reject(new Error(`import batch of ${batch.length} refused: ${why}`));
        } else for (const [index, waiting] of batch.entries()) waiting.resolve(results[index] as Reply);
      },
      (err: Error) => {
        this.answered();
        for (const waiting of batch) waiting.reject(err);
      },
    );
  }

  /** A batch answered: what gathered behind it goes, when batches wait for answers. */
  private answered(): void {
    this.unanswered -= 1;
    if ("maxInFlight" in this.limits.timing && this.waiting.length > 0) this.flush();
  }

  /** Fails whatever is still waiting (the sync stopped). */
  cancel(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const batch = this.waiting;
    this.waiting = [];
    this.bytes = 0;
    for (const waiting of batch) waiting.reject(new Error("sync stopped"));
  }
}

function isFailure(reply: unknown): reply is Reply {
  return typeof reply === "object" && reply !== null && (reply as Reply).error === true && typeof (reply as Reply).message === "string";
}
