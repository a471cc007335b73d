// Import batches for many recipients at once (the SMTP server's): one batcher per user and receiving
// identity, so that mail for one recipient arriving on several sessions at once goes to its inbound
// actor in one request. A batcher is dropped as soon as it has sent what waited in it: the map holds
// only recipients with mail waiting this very moment.
import type { Reply } from "../../runtime/reply.ts";
import { ImportBatcher, type BatchLimits } from "./import-batcher.ts";
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
      const created: ImportBatcher = new ImportBatcher((rawIds) => {
        // Sending empties it: the next raw for this recipient starts a new one.
        if (this.batchers.get(key) === created && created.idle) this.batchers.delete(key);
        return this.send({ user_id: userId, remote_id: identityId, raw_ids: rawIds });
      }, this.limits);
      batcher = created;
      this.batchers.set(key, batcher);
    }
    return batcher.import(rawId, bytes);
  }

  /** Recipients with raws waiting now (for tests). */
  get waiting(): number {
    return this.batchers.size;
  }
}
