// The actors living on this node, by kind and key. It activates them (restoring their snapshot),
// delivers to them in-process, stops them, and reports crashes to whoever supervises the kind.

import { randomUUID } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import pLimit from "p-limit";
import type { Logger } from "pino";
import type { AnyStateMachine } from "xstate";
import { ActorCell, type CellEnvironment } from "./actor-cell.ts";
import type { ActorFamily, ActorInput, ActorMessage, ActorPorts } from "./actor-family.ts";
import { busMessageProblem } from "./bus-messages.ts";
import type { DeadLetters } from "./dead-letters.ts";
import { type ActorCount, RuntimeMetrics } from "./metrics.ts";
import { createPorts } from "./ports.ts";
import { Requester } from "./requester.ts";
import type { RestingIndex } from "./resting-index.ts";
import type { SnapshotStore } from "./snapshot-store.ts";
import { actorKeyProblem, type Subjects } from "./subjects.ts";

export interface ActorHostOptions {
  nc: NatsConnection;
  subjects: Subjects;
  nodeId: string;
  logger: Logger;
  snapshots: SnapshotStore;
  deadLetters: DeadLetters;
  /** The node's metrics (a registry of its own when left out). */
  metrics?: RuntimeMetrics;
  /** Resting actors restored at once, at most (a cold start can wake thousands whose deadline passed). */
  wakeConcurrency?: number;
}

const DEFAULT_WAKE_CONCURRENCY = 32;

export interface CellFailureListener {
  onCrash(cell: ActorCell, error: Error): void;
  onFenced(cell: ActorCell, error: Error): void;
  /** The actor's machine reached a final state (default: stop it and drop its snapshot). */
  onFinished?(cell: ActorCell): void;
}

interface RegisteredFamily {
  family: ActorFamily;
  machine: AnyStateMachine;
  env: CellEnvironment;
  cells: Map<string, ActorCell>;
  activating: Map<string, Promise<ActorCell>>;
}

export class ActorHost {
  readonly ports: ActorPorts;
  readonly metrics: RuntimeMetrics;
  private readonly families = new Map<string, RegisteredFamily>();
  private readonly listeners = new Map<string, CellFailureListener>();
  private readonly requester: Requester;
  /** Tells this process's snapshot writes from those of an earlier run of the same node. */
  private readonly incarnation = randomUUID();
  private restingIndex: RestingIndex | null = null;
  private readonly wakes: ReturnType<typeof pLimit>;

  constructor(private readonly options: ActorHostOptions) {
    this.requester = new Requester(options.nc);
    this.wakes = pLimit(options.wakeConcurrency ?? DEFAULT_WAKE_CONCURRENCY);
    this.metrics = options.metrics ?? new RuntimeMetrics();
    this.metrics.countActorsWith(() => this.countByState());
    this.ports = createPorts(options.nc, options.subjects, this.requester, options.deadLetters, options.logger);
  }

  register(family: ActorFamily, listener?: CellFailureListener): void {
    if (this.families.has(family.kind)) throw new Error(`actor kind "${family.kind}" is already registered`);
    const { nc, subjects, nodeId, logger, snapshots, deadLetters } = this.options;
    const env: CellEnvironment = {
      nc,
      subjects,
      nodeId,
      incarnation: this.incarnation,
      logger: logger.child({ kind: family.kind }),
      ports: this.ports,
      accepts: family.accepts ?? {},
      ...(family.upgradeContext !== undefined && { upgradeContext: family.upgradeContext }),
      store: family.persistence === "none" ? null : snapshots,
      resting: () => (family.persistence === "none" ? null : this.restingIndex),
      limitWakes: (restore) => this.wakes(restore),
      onCrash: (cell, error) => {
        logger.error({ kind: cell.kind, key: cell.key, err: error.message }, "actor crashed");
        this.metrics.actorCrashed(cell.kind);
        this.listeners.get(cell.kind)?.onCrash(cell, error);
      },
      onFenced: (cell, error) => {
        logger.warn({ kind: cell.kind, key: cell.key, err: error.message }, "actor fenced off: it no longer owns its key");
        const listener = this.listeners.get(cell.kind);
        if (listener !== undefined) listener.onFenced(cell, error);
        else void this.stop(cell.kind, cell.key);
      },
      onFinished: (cell) => {
        logger.info({ kind: cell.kind, key: cell.key }, "actor finished");
        const listener = this.listeners.get(cell.kind);
        if (listener?.onFinished !== undefined) listener.onFinished(cell);
        else void this.stop(cell.kind, cell.key, { forget: true });
      },
      onRejected: (cell, reason, data) => deadLetters.record(cell.subject, reason, data),
    };
    this.families.set(family.kind, { family, machine: family.createMachine(this.ports), env, cells: new Map(), activating: new Map() });
    if (listener !== undefined) this.listeners.set(family.kind, listener);
  }

  /** Where passivated actors are recorded as resting from now on (the cluster's registry). */
  recordRestsIn(index: RestingIndex): void {
    this.restingIndex = index;
  }

  kinds(): string[] {
    return [...this.families.keys()];
  }

  /** The live actor, activating it (from its snapshot, if any) when it is not yet running here. */
  async activate(kind: string, key: string, input: Record<string, unknown> = {}): Promise<ActorCell> {
    const registered = this.familyOf(kind);
    const badKey = actorKeyProblem(key);
    if (badKey !== null) throw new Error(`cannot start a ${kind} actor: ${badKey}`);
    const live = registered.cells.get(key);
    if (live !== undefined) return live;
    const pending = registered.activating.get(key);
    if (pending !== undefined) return pending;
    const activation = (async () => {
      const actorInput: ActorInput = { ...input, kind, key };
      const cell = new ActorCell(kind, key, registered.machine, actorInput, registered.env);
      await cell.activate();
      registered.cells.set(key, cell);
      this.metrics.actorActivated(kind);
      return cell;
    })();
    registered.activating.set(key, activation);
    try {
      return await activation;
    } finally {
      registered.activating.delete(key);
    }
  }

  /**
   * Places an actor recorded as resting without restoring it: its mailbox opens and it is restored when
   * `wakeAt` comes (null: never by itself) or a message does. A live one is left as it is.
   */
  rest(kind: string, key: string, input: Record<string, unknown>, wakeAt: number | null): ActorCell {
    const registered = this.familyOf(kind);
    const badKey = actorKeyProblem(key);
    if (badKey !== null) throw new Error(`cannot place a ${kind} actor: ${badKey}`);
    const live = registered.cells.get(key);
    if (live !== undefined) return live;
    if (registered.activating.has(key)) throw new Error(`${kind}/${key} is being activated`);
    const cell = new ActorCell(kind, key, registered.machine, { ...input, kind, key }, registered.env);
    cell.rest(wakeAt);
    registered.cells.set(key, cell);
    return cell;
  }

  get(kind: string, key: string): ActorCell | undefined {
    return this.families.get(kind)?.cells.get(key);
  }

  /** Delivers an event of the node's own in-process when the actor lives here; returns false otherwise. */
  tellLocal(kind: string, key: string, message: ActorMessage): boolean {
    const cell = this.get(kind, key);
    if (cell === undefined) return false;
    cell.receive(message);
    return true;
  }

  /**
   * Why a message from the bus must not reach an actor of this kind (see ActorCell.receiveFromBus), or
   * null: lets a caller refuse it before starting an actor for it.
   */
  busMessageProblem(kind: string, message: Pick<ActorMessage, "type" | "payload">): string | null {
    const registered = this.families.get(kind);
    if (registered === undefined) return `no ${kind} actors run on this node`;
    return busMessageProblem(kind, registered.env.accepts, message);
  }

  async stop(kind: string, key: string, options: { forget?: boolean } = {}): Promise<boolean> {
    const registered = this.familyOf(kind);
    const pending = registered.activating.get(key);
    if (pending !== undefined) await pending.catch(() => undefined);
    const cell = registered.cells.get(key);
    if (cell === undefined) {
      if (options.forget && registered.env.store !== null) await registered.env.store.remove(kind, key);
      return false;
    }
    registered.cells.delete(key);
    await cell.stop(options);
    return true;
  }

  list(): ActorCell[] {
    const out: ActorCell[] = [];
    for (const registered of this.families.values()) out.push(...registered.cells.values());
    return out;
  }

  count(): number {
    let total = 0;
    for (const registered of this.families.values()) total += registered.cells.size;
    return total;
  }

  /** Passivates every actor idle for at least `idleForMs`; returns how many. */
  passivateIdle(idleForMs: number): number {
    let passivated = 0;
    for (const [kind, registered] of this.families) {
      let ofKind = 0;
      for (const cell of registered.cells.values()) if (cell.passivate(idleForMs)) ofKind += 1;
      if (ofKind > 0) this.metrics.actorsPassivated(kind, ofKind);
      passivated += ofKind;
    }
    return passivated;
  }

  /** Live actors by kind and state (running, passivated, crashed), every registered kind included. */
  countByState(): ActorCount[] {
    const out: ActorCount[] = [];
    for (const [kind, registered] of this.families) {
      const counts = { running: 0, passivated: 0, crashed: 0 };
      for (const cell of registered.cells.values()) {
        if (cell.status === "crashed") counts.crashed += 1;
        else if (cell.passivated) counts.passivated += 1;
        else counts.running += 1;
      }
      for (const [state, count] of Object.entries(counts)) out.push({ kind, state, count });
    }
    return out;
  }

  /** True while any actor is in a state tagged `busy`. */
  anyBusy(): boolean {
    for (const registered of this.families.values()) for (const cell of registered.cells.values()) if (cell.busy) return true;
    return false;
  }

  /** Stops every actor (their snapshots are kept) and the host's request inbox. */
  async stopAll(): Promise<void> {
    for (const registered of this.families.values()) {
      const cells = [...registered.cells.values()];
      registered.cells.clear();
      await Promise.all(cells.map((cell) => cell.stop()));
    }
    this.requester.close();
  }

  private familyOf(kind: string): RegisteredFamily {
    const registered = this.families.get(kind);
    if (registered === undefined) throw new Error(`no actor family "${kind}" on this node`);
    return registered;
  }
}
