// Runs the shards this node owns. Starting a shard resumes every actor registered in it (a resting one
// only gets its mailbox and a timer, see runtime/resting-index.ts); from then on
// the node applies the keyed orders handed to it for the shard's actors, each key's one after the other
// so that an actor's lifecycle orders and its other orders keep their order. Stopping a shard answers
// "moved" to every order still coming, waits for those already being handed over, and stops the
// shard's actors once their last state is saved.
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import type { Logger } from "pino";
import type { ActorCell } from "../actor-cell.ts";
import type { ActorHost } from "../actor-host.ts";
import type { DeadLetters } from "../dead-letters.ts";
import { encodeJson } from "../json.ts";
import type { Subjects } from "../subjects.ts";
import type { ActorRegistry } from "./actor-registry.ts";
import type { FamilySupervisor } from "./family-supervisor.ts";
import type { KeyedOrder } from "./keyed-order.ts";
import { shardOf } from "./rendezvous.ts";

export interface ShardRunnerDeps {
  host: ActorHost;
  supervisors: ReadonlyMap<string, FamilySupervisor>;
  registry: ActorRegistry;
  deadLetters: DeadLetters;
  subjects: Subjects;
  shards: number;
  logger: Logger;
  /** Kinds whose actors start on their first order (otherwise such an order is refused). */
  activateOnOrder: ReadonlySet<string>;
}

/**
 * What became of a keyed order handed to this node: "done" once the actor's state after it is saved (or
 * it was kept as a dead letter: it can never apply); "moved" when this node does not (or no longer)
 * run its shard; "retry" when it could not be applied here for now (the store unreachable, the actor
 * stopped before its state was saved).
 */
export type ApplyOutcome = "done" | "moved" | "retry";

interface RunningShard {
  shard: number;
  /** Its actors are all running again: orders for them may be applied. */
  resumed: boolean;
  stopping: boolean;
  /** Orders being handed to this shard's actors: a stopping shard waits for them. */
  handing: Set<Promise<unknown>>;
}

/** Resolves, once its order is handed to the actor, with what became of it once saved (wrapped: not flattened). */
interface Handed {
  saved: Promise<ApplyOutcome>;
}

const DONE: Handed = { saved: Promise.resolve("done") };
const MOVED: Handed = { saved: Promise.resolve("moved") };

const RESUME_CONCURRENCY = 32;

export class ShardRunner {
  private readonly running = new Map<number, RunningShard>();
  /** Actors being started for requests: a burst of requests for a new actor starts it once. */
  private readonly startingForRequests = new Map<string, Promise<ActorCell>>();
  /** The last order of each key being handed to its actor: the next one waits for it. */
  private readonly turns = new Map<string, Promise<unknown>>();
  /** Each actor's shard, computed once: a node handing many shards over goes over all of its actors for each. */
  private readonly cellShards = new WeakMap<ActorCell, number>();

  constructor(private readonly deps: ShardRunnerDeps) {}

  owned(): number[] {
    return [...this.running.keys()].sort((a, b) => a - b);
  }

  isRunning(shard: number): boolean {
    return this.running.has(shard);
  }

  /** The shard's actors run here again and take orders. */
  takesOrders(shard: number): boolean {
    const state = this.running.get(shard);
    return state?.resumed === true && !state.stopping;
  }

  /** Starts the shard; on failure nothing of it is left running and the caller may try again. */
  async start(shard: number): Promise<void> {
    if (this.running.has(shard)) return;
    const state: RunningShard = { shard, resumed: false, stopping: false, handing: new Set() };
    this.running.set(shard, state);
    try {
      await this.resume(state);
    } catch (err) {
      this.deps.logger.warn({ shard, err: (err as Error).message }, "shard could not start, will retry");
      await this.stop(shard);
      throw err;
    }
  }

  private async resume(state: RunningShard): Promise<void> {
    const shard = state.shard;
    const actors = await this.deps.registry.list(shard);
    const failures: string[] = [];
    for (let i = 0; i < actors.length && !state.stopping; i += RESUME_CONCURRENCY) {
      // Placing a resting actor involves no I/O: without a turn of the event loop between batches, a
      // shard of thousands would be resumed in one go, and orders and membership checks would wait.
      if (i > 0) await yieldToEventLoop();
      await Promise.all(
        actors.slice(i, i + RESUME_CONCURRENCY).map(async (actor) => {
          const supervisor = this.deps.supervisors.get(actor.kind);
          if (supervisor === undefined) return this.deps.logger.warn({ kind: actor.kind, key: actor.key }, "registered actor of a kind this node does not run");
          const resumed = actor.wakeAt === undefined ? supervisor.resume(actor.key, actor.input) : supervisor.rest(actor.key, actor.input, actor.wakeAt);
          await resumed.catch((err: Error) => failures.push(`${actor.kind}/${actor.key}: ${err.message}`));
        }),
      );
    }
    if (failures.length > 0) throw new Error(`${failures.length} actor(s) could not be resumed, first: ${failures[0]}`);
    state.resumed = true;
    this.deps.logger.debug({ shard, actors: actors.length }, "shard started");
  }

  /**
   * Starts, for a request that names it, an actor of a kind that starts on its first order: "refused"
   * for other kinds, "moved" when this node does not run (or no longer runs) its shard.
   */
  async startForRequest(kind: string, key: string, input: Record<string, unknown>): Promise<ActorCell | "refused" | "moved"> {
    const supervisor = this.deps.supervisors.get(kind);
    if (supervisor === undefined || !this.deps.activateOnOrder.has(kind)) return "refused";
    const shard = shardOf(kind, key, this.deps.shards);
    const state = this.running.get(shard);
    if (state === undefined || state.stopping) return "moved";
    const id = `${kind}.${key}`;
    let starting = this.startingForRequests.get(id);
    if (starting === undefined) {
      starting = supervisor.start(key, input).finally(() => this.startingForRequests.delete(id));
      this.startingForRequests.set(id, starting);
    }
    const cell = await starting;
    // The shard was handed off meanwhile: its new owner resumes the actor from the registry.
    if (this.running.get(shard) !== state || state.stopping) {
      await this.deps.host.stop(kind, key);
      return "moved";
    }
    return cell;
  }

  /** Stops the shard; `cells` are its actors when the caller grouped them already (stopping many shards at once). */
  async stop(shard: number, cells?: ActorCell[]): Promise<void> {
    const state = this.running.get(shard);
    if (state === undefined) return;
    state.stopping = true;
    while (state.handing.size > 0) await Promise.all(state.handing);
    const ofShard = cells ?? this.deps.host.list().filter((cell) => this.shardOfCell(cell) === shard);
    await Promise.all(ofShard.map((cell) => this.deps.host.stop(cell.kind, cell.key)));
    this.running.delete(shard);
    this.deps.logger.debug({ shard, actors: ofShard.length }, "shard stopped");
  }

  /** Stops every shard, going over this node's actors once (not once per shard: a node may hold 100,000). */
  async stopAll(): Promise<void> {
    const byShard = new Map<number, ActorCell[]>();
    for (const cell of this.deps.host.list()) {
      const shard = this.shardOfCell(cell);
      const cells = byShard.get(shard);
      if (cells === undefined) byShard.set(shard, [cell]);
      else cells.push(cell);
    }
    await Promise.all(this.owned().map((shard) => this.stop(shard, byShard.get(shard) ?? [])));
  }

  private shardOfCell(cell: ActorCell): number {
    let shard = this.cellShards.get(cell);
    if (shard === undefined) {
      shard = shardOf(cell.kind, cell.key, this.deps.shards);
      this.cellShards.set(cell, shard);
    }
    return shard;
  }

  /**
   * Applies a keyed order to its actor if this node runs the actor's shard. A key's orders are handed to
   * its actor one after the other, in the order they came; the next one does not wait for the state
   * after the previous one to be saved.
   */
  apply(order: KeyedOrder): Promise<ApplyOutcome> {
    const state = this.running.get(shardOf(order.kind, order.key, this.deps.shards));
    // Not resumed yet: an order now could find its actor not running again yet. The sender comes back.
    if (state === undefined || state.stopping || !state.resumed) return Promise.resolve("moved");
    const id = `${order.kind}.${order.key}`;
    const handed = (this.turns.get(id) ?? Promise.resolve()).then(() => this.hand(state, order));
    const turn = handed.catch(() => undefined);
    this.turns.set(id, turn);
    state.handing.add(turn);
    void turn.then(() => {
      state.handing.delete(turn);
      if (this.turns.get(id) === turn) this.turns.delete(id);
    });
    return handed.then(
      ({ saved }) => saved,
      (err: Error): ApplyOutcome => {
        // A failure of our own (e.g. the store is unreachable): the sender hands it over again later.
        this.deps.logger.warn({ kind: order.kind, key: order.key, op: order.op, err: err.message }, "keyed order failed, will be handed over again");
        return "retry";
      },
    );
  }

  private async hand(state: RunningShard, order: KeyedOrder): Promise<Handed> {
    if (state.stopping) return MOVED;
    const supervisor = this.deps.supervisors.get(order.kind);
    if (supervisor === undefined) return this.deadLetter(order, `no ${order.kind} actors run on this deployment`, encodeJson(order));
    switch (order.op) {
      case "start":
        await supervisor.start(order.key, order.input ?? {});
        return DONE;
      case "reload":
        await supervisor.reload(order.key, order.input ?? {});
        return DONE;
      case "remove":
        await supervisor.remove(order.key);
        return DONE;
      case "tell":
        return this.tell(supervisor, order);
    }
  }

  private async tell(supervisor: FamilySupervisor, order: KeyedOrder): Promise<Handed> {
    const message = { type: order.message?.type ?? "", payload: order.message?.payload ?? {}, id: order.id };
    // Refused before an actor is started for it; the cell checks it again (receiveFromBus).
    const problem = this.deps.host.busMessageProblem(order.kind, message);
    if (problem !== null) return this.deadLetter(order, problem, encodeJson(order.message ?? {}));
    // A finished actor takes nothing more: its supervisor is removing it, and an order for it goes to
    // the actor that follows (started after that removal), or is dead-lettered like any for none.
    let cell: ActorCell | undefined = this.deps.host.get(order.kind, order.key);
    if (cell?.finished === true) cell = undefined;
    if (cell === undefined) {
      if (!this.deps.activateOnOrder.has(order.kind)) {
        return this.deadLetter(order, `no ${order.kind} actor for "${order.key}": it was never added (or was removed)`, encodeJson(order.message ?? {}));
      }
      cell = await supervisor.start(order.key, order.input ?? {});
      // Restored from a snapshot saved as it finished (its node stopped before removing it): removed
      // first, in its turn, then a new one.
      if (cell.finished) cell = await supervisor.start(order.key, order.input ?? {});
    }
    const target = cell;
    return { saved: new Promise<ApplyOutcome>((resolve) => target.receiveFromBus(message, resolve)) };
  }

  private deadLetter(order: KeyedOrder, reason: string, data: Uint8Array): Handed {
    this.deps.deadLetters.record(this.deps.subjects.actor(order.kind, order.key), reason, data);
    return DONE;
  }
}
