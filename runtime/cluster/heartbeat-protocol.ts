// What a node's main thread and its heartbeat thread share. The heartbeat runs on a thread of its own so
// that a main event loop stalled by a full collection or saturated cores does not look like a dead node;
// the two threads meet through a few slots of shared memory that each reads without waiting on the other.
import type { NatsEndpoint } from "../nats-endpoint.ts";

/** Given to the heartbeat thread when it starts (structured-cloned: plain data only). */
export interface HeartbeatSetup {
  endpoint: NatsEndpoint;
  /** The NATS connection's name, as `nats server report connections` shows it. */
  connectionName: string;
  /** The membership bucket, already created by the main thread. */
  bucket: string;
  nodeId: string;
  info: Record<string, unknown>;
  heartbeatMs: number;
  /** Confirmed heartbeats further apart than this leave a gap in which others may have taken this node for dead. */
  fenceAfterMs: number;
  /** A main thread silent for this long is taken for stuck: the heartbeats stop so that other nodes take over. */
  mainStallLimitMs: number;
  clock: SharedArrayBuffer;
}

export type ToHeartbeatThread = { type: "leave" } | { type: "stop" };

export type FromHeartbeatThread =
  | { type: "ready" }
  | { type: "failed"; reason: string }
  | { type: "left" }
  | { type: "stopped" }
  /** One pino JSON line, for the main thread's logger. */
  | { type: "log"; line: string }
  | { type: "connection"; up: boolean };

/** Monotonic milliseconds, the same in every thread of the process (unlike performance.now()). */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

const BEAT_CONFIRMED_AT = 0;
const MAIN_ALIVE_AT = 1;
const CAN_SERVE = 2;
const GAPS = 3;
const SLOTS = 4;

/** Times kept as whole nanoseconds in 64-bit slots read and written atomically. */
export class SharedHeartbeatClock {
  private readonly slots: BigInt64Array;

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(SLOTS * BigInt64Array.BYTES_PER_ELEMENT)) {
    this.slots = new BigInt64Array(buffer);
  }

  /** When the last heartbeat the server confirmed was sent (monotonic ms; -Infinity before the first). */
  beatConfirmedAt(): number {
    const at = Atomics.load(this.slots, BEAT_CONFIRMED_AT);
    return at === 0n ? -Infinity : Number(at) / 1e6;
  }

  /**
   * Records a heartbeat the server confirmed, and a gap when the one before was confirmed too long
   * before it (the process was frozen, or the beats were stopped): the main thread fences on a gap even
   * if the beat that ends it landed before it looked.
   */
  confirmBeat(sentAtMs: number, gapAfterMs: number): void {
    const at = BigInt(Math.round(sentAtMs * 1e6));
    const previous = Atomics.load(this.slots, BEAT_CONFIRMED_AT);
    if (at <= previous) return;
    if (previous !== 0n && Number(at - previous) / 1e6 > gapAfterMs) Atomics.add(this.slots, GAPS, 1n);
    Atomics.store(this.slots, BEAT_CONFIRMED_AT, at);
  }

  /** How many gaps there have been between confirmed heartbeats. */
  gaps(): number {
    return Number(Atomics.load(this.slots, GAPS));
  }

  mainAliveAt(): number {
    return Number(Atomics.load(this.slots, MAIN_ALIVE_AT)) / 1e6;
  }

  /** The main thread's proof of life, with whether its node may serve (its actors' connection is up). */
  mainAlive(canServe: boolean): void {
    Atomics.store(this.slots, CAN_SERVE, canServe ? 1n : 0n);
    Atomics.store(this.slots, MAIN_ALIVE_AT, process.hrtime.bigint());
  }

  canServe(): boolean {
    return Atomics.load(this.slots, CAN_SERVE) === 1n;
  }
}
