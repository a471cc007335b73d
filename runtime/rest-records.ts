// What the registry is told about one actor's rests (resting-index.ts): that it rests, once the state
// it rests in is saved; that it is awake, before the woken actor's next state is saved.
import type { Logger } from "pino";
import type { ActorInput } from "./actor-family.ts";
import { backoffDelay, DEFAULT_BACKOFF } from "./backoff.ts";
import { type RestingIndex, wakeTimeOf } from "./resting-index.ts";
import type { SnapshotWriter } from "./snapshot-writer.ts";

/** A rest not recorded only means a next owner restores the actor at once: a few tries are enough. */
const REST_RECORD_TRIES = 3;

export class RestRecords {
  /** A rest was (or may have been) recorded since the actor last woke: it must be recorded awake before its next write. */
  private recorded = false;

  constructor(
    private readonly index: () => RestingIndex | null,
    private readonly writer: SnapshotWriter,
    private readonly input: ActorInput,
    private readonly logger: Logger,
  ) {}

  /** The actor was placed resting: its rest is on record. */
  placedResting(): void {
    this.recorded = true;
  }

  /** Records the passivated actor as resting in `dormant`, tried again while `stillResting()`. */
  passivated(dormant: unknown, stillResting: () => boolean): void {
    const index = this.index();
    if (index === null) return;
    const attempt = (tries: number): void => {
      if (!stillResting()) return;
      this.recorded = true;
      index.rest(this.input, wakeTimeOf(dormant)).catch((err: Error) => {
        this.logger.debug({ key: this.input.key, err: err.message, tries }, "rest not recorded");
        if (tries < REST_RECORD_TRIES) setTimeout(() => attempt(tries + 1), backoffDelay(DEFAULT_BACKOFF, tries)).unref();
      });
    };
    this.writer.settleWhenSaved((outcome) => {
      if (outcome === "done") attempt(1);
    });
  }

  /** The actor wakes: its next snapshot write waits until it is recorded awake. */
  waking(): void {
    const index = this.index();
    if (!this.recorded || index === null) return;
    this.recorded = false;
    // Asked now, so that it lands after the rest it follows; asked again if it failed.
    let first: Promise<void> | null = index.wake(this.input);
    first.catch(() => undefined);
    this.writer.holdWritesUntil(() => {
      const step = first ?? index.wake(this.input);
      first = null;
      return step;
    });
  }
}
