// An actor's state as operators follow it: every change of its state value is published on its
// transitions subject (what `caliopen watch` shows), with the event that caused it.
import type { NatsConnection } from "@nats-io/transport-node";
import { encodeJson } from "./json.ts";

/** What a transition's `event` says when no message caused it. */
export const INTERNAL_EVENT = "(internal)";

export interface TransitionSource {
  kind: string;
  key: string;
  node: string;
  /** The subject transitions are published on. */
  subject: string;
}

export class TransitionLog {
  private value: unknown = null;
  private changedAt = Date.now();

  constructor(
    private readonly nc: NatsConnection,
    private readonly source: TransitionSource,
  ) {}

  /** The current state value. */
  get state(): unknown {
    return this.value;
  }

  /** When the state value last changed (ms). */
  get since(): number {
    return this.changedAt;
  }

  /** Records the machine's state value; publishes the transition when it changed. `cause`: the event being handled, if any. */
  observe(value: unknown, cause: string | null): void {
    if (sameValue(value, this.value)) return;
    const from = this.value;
    this.value = value;
    this.changedAt = Date.now();
    const { kind, key, node } = this.source;
    this.nc.publish(
      this.source.subject,
      encodeJson({ kind, key, node, from, to: value, event: cause ?? INTERNAL_EVENT, at: new Date(this.changedAt).toISOString() }),
    );
  }
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  return JSON.stringify(a) === JSON.stringify(b);
}
