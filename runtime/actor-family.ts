import type { Logger } from "pino";
import type { AnyStateMachine } from "xstate";
import type { PayloadSchema } from "./payload-schema.ts";
import type { Reply } from "./reply.ts";

/**
 * What an actor receives: every NATS message and every deadline becomes one of these. Messages from the
 * bus reach the machine only if their type is one the family `accepts` (see ActorCell.receiveFromBus). `replyTo` is the
 * requester's inbox when the message was a request; the machine answers it through `ports.reply`.
 */
export interface ActorMessage<P extends object = Record<string, unknown>> {
  type: string;
  payload: P;
  replyTo?: string;
  /** A unique id for messages that may be delivered more than once; the actor applies each id once. */
  id?: string;
}

/**
 * A message of one type with a known payload: what a machine's event union is made of
 * (`setup({ types: { events: {} as A | B } })`), so that its transitions read payloads without casts.
 */
export type TypedMessage<T extends string, P extends object> = ActorMessage<P> & { type: T };

/** What a deadline of the context sends when it falls due (deadlines.ts): its time. */
export type DeadlineMessage<T extends string> = TypedMessage<T, { at: number }>;

/** What a machine may do to the outside world. Subjects are given without the deployment namespace. */
export interface ActorPorts {
  publish(subject: string, payload: unknown): void;
  /** Answers a request; does nothing when `replyTo` is undefined (the message was published). */
  reply(replyTo: string | undefined, body: Reply): void;
  request(subject: string, payload: unknown, timeoutMs: number): Promise<unknown>;
  /**
   * Keeps an order the actor took but gave up on (e.g. after its last retry) as a dead letter of the
   * subject it came on, as an entry point does for the orders it cannot handle.
   */
  deadLetter(subject: string, reason: string, payload: unknown): void;
  logger: Logger;
}

/** The input every actor machine receives when it starts without a snapshot. */
export interface ActorInput {
  kind: string;
  key: string;
  [field: string]: unknown;
}

/**
 * A family of actors of one kind (e.g. `imap`). The machine is built once per node from the ports, so a
 * live actor costs only its own state. A machine may tag states `busy` to say work is in flight (a
 * graceful shutdown waits for it) and keep absolute deadlines in `context.deadlines` (see deadlines.ts).
 */
export interface ActorFamily {
  kind: string;
  createMachine(ports: ActorPorts): AnyStateMachine;
  /** "snapshot" (default): saved to KV after settled transitions and restored on start. */
  persistence?: "snapshot" | "none";
  /** A short human description for debug output. */
  description?: string;
  /** Start an actor of this kind when a message arrives for a key that has none (default: refuse). */
  startsOnFirstMessage?: boolean;
  /**
   * The message types anyone on the bus may send these actors (their orders), each with the schema its
   * payload must pass. Every other type — deadlines, results of invoked work, runtime notices — only
   * comes from the node itself. A family that declares nothing takes nothing from the bus.
   */
  accepts?: Readonly<Record<string, PayloadSchema>>;
  /**
   * A context saved by an earlier release, as this release's machine reads it: applied to every
   * snapshot an actor is restored from (a saved context is never rewritten otherwise).
   */
  upgradeContext?(saved: Record<string, unknown>): Record<string, unknown>;
}

export const BUSY_TAG = "busy";

/**
 * The notice an actor gets right after a supervisor reloaded it (stopped and started it again with its
 * snapshot, to read fresh configuration), if its current state takes it: a machine waiting to retry
 * after a failure may retry at once. A machine that does not handle it never sees it.
 */
export const RELOADED_EVENT = "reloaded";
