// Import batches for many recipients at once (the SMTP server's): one batcher per user and receiving
// identity, so that mail for one recipient arriving on several sessions at once goes to its inbound
// actor together. A batcher is dropped once nothing of it waits to be sent or answered: the map holds
// only recipients with mail in flight.
import type { Reply } from "../../runtime/reply.ts";
import { type BatchLimits, ImportBatcher } from "./import-batcher.ts";
import type { ImportBatchOrder } from "./inbound-batch.ts";

export class ImportBatchers {
  private readonly batchers = new Map<string, ImportBatcher>();

  constructor(
    private readonly send: (order: ImportBatchOrder) => Promise<unknown>,
    private readonly limits: BatchLimits,
  ) {}

  /** The reply for this raw, received by `identityId` of `userId`, once its batch is answered. */
  import(userId: string, identityId: string, rawId: string, bytes: number): Promise<Reply> {
    const key = `${userId} ${identityId}`;
    let batcher = this.batchers.get(key);
    if (batcher === undefined) {
      batcher = new ImportBatcher((rawIds) => this.send({ user_id: userId, remote_id: identityId, raw_ids: rawIds }), this.limits);
      this.batchers.set(key, batcher);
    }
    const reply = batcher.import(rawId, bytes);
    const used = batcher;
    const release = () => {
      if (this.batchers.get(key) === used && used.idle) this.batchers.delete(key);
    };
    reply.then(release, release);
    return reply;
  }

  /** Recipients with raws waiting now (for tests). */
  get waiting(): number {
    return this.batchers.size;
  }
}
