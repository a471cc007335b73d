// Writes to one stored object from this process, one batch at a time: writes asked for while one runs
// wait and then go together. Many imports writing to the same object at once (a user's mail index, one
// discussion's index or summary) would otherwise each read it, race for its compare-and-swap and read it
// again; batched, they cost one read and one write between them.

/** Writes a batch: every item of consecutive writes of one kind; resolves to a count for its writers. */
export type BatchWrite<T> = (kind: string, items: T[]) => Promise<number>;

interface Pending<T> {
  kind: string;
  items: readonly T[];
  resolve(count: number): void;
  reject(err: unknown): void;
}

/** The writes to one object. */
class WriteQueue<T> {
  private readonly pending: Pending<T>[] = [];
  private running = false;

  constructor(
    private readonly write: BatchWrite<T>,
    private readonly idle: () => void,
  ) {}

  push(kind: string, items: readonly T[]): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.pending.push({ kind, items, resolve, reject });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.pending.length > 0) {
        const kind = (this.pending[0] as Pending<T>).kind;
        const end = this.pending.findIndex((write) => write.kind !== kind);
        const batch = this.pending.splice(0, end < 0 ? this.pending.length : end);
        try {
          const count = await this.write(
            kind,
            batch.flatMap((write) => write.items),
          );
          for (const write of batch) write.resolve(count);
        } catch (err) {
          for (const write of batch) write.reject(err);
        }
      }
    } finally {
      this.running = false;
      this.idle();
    }
  }
}

/**
 * Write queues by object key, kept while writes are pending (an idle one is forgotten, so a process
 * writing to many objects holds a queue only for those it writes to now).
 */
export class WriteBatches<T> {
  private readonly queues = new Map<string, WriteQueue<T>>();

  /**
   * Queues a write to `key`; resolves once it is done, to the count of the batch it went with (its own
   * when alone). Consecutive writes of one kind go together; writes of different kinds never swap
   * places. `write` does a batch (the first writer's, while the queue lives).
   */
  push(key: string, kind: string, items: readonly T[], write: BatchWrite<T>): Promise<number> {
    let queue = this.queues.get(key);
    if (queue === undefined) {
      const created: WriteQueue<T> = new WriteQueue(write, () => {
        if (this.queues.get(key) === created) this.queues.delete(key);
      });
      this.queues.set(key, created);
      queue = created;
    }
    return queue.push(kind, items);
  }
}
