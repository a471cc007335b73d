// Resting actors: an actor passivated with nothing to do before its earliest deadline is recorded as
// resting until then, so that a node taking its shard over arms one timer for it instead of restoring
// it (a read and a fencing write each), and a cold start of tens of thousands of pollers costs a pass
// over the registry rather than a restore per actor.
//
// The record must never promise a later wake than the stored state needs. So it is written only after
// the state it describes is saved, and cleared (the actor is "awake") before the woken actor's next
// state is saved: a crash between the two leaves an old wake time for an unchanged state, or an awake
// record, which means "restore at once".
import type { ActorInput } from "./actor-family.ts";
import { readDeadlines } from "./deadlines.ts";

export interface RestingIndex {
  /** Records that the actor rests until `wakeAt` (null: until a message comes). */
  rest(input: ActorInput, wakeAt: number | null): Promise<void>;
  /** Records that the actor is awake: its stored state may change from now on. */
  wake(input: ActorInput): Promise<void>;
}

/** When an actor passivated with this persisted snapshot must be woken: its earliest deadline, if any. */
export function wakeTimeOf(persisted: unknown): number | null {
  const context = typeof persisted === "object" && persisted !== null ? (persisted as { context?: unknown }).context : undefined;
  const times = Object.values(readDeadlines(context));
  return times.length === 0 ? null : Math.min(...times);
}
