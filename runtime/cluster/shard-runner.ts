// Runs the shards this node owns. Starting a shard resumes every actor registered in it and consumes
// the shard's keyed orders, one at a time so that an actor's lifecycle orders and its other orders keep
// their order. Stopping a shard stops consuming, hands the orders it had not handled back to the stream,
// and stops the shard's actors once their last state is saved.
import type { ConsumerMessages, JsMsg } from "@nats-io/jetstream";
import type { Logger } from "pino";
import type { ActorCell } from "../actor-cell.ts";
import type { ActorHost } from "../actor-host.ts";
import type { DeadLetters } from "../dead-letters.ts";
import { decodeJson, encodeJson } from "../json.ts";
import type { ActorRegistry } from "./actor-registry.ts";
import type { FamilySupervisor } from "./family-supervisor.ts";
import { type KeyedOrder, type OrderStream, readKeyedOrder, WRAPPED_ORDER_LIMITS } from "./order-stream.ts";
import { shardOf } from "./rendezvous.ts";

export interface ShardRunnerDeps {
  host: ActorHost;
  supervisors: ReadonlyMap<string, FamilySupervisor>;
  registry: ActorRegistry;
  orders: OrderStream;
  deadLetters: DeadLetters;
  shards: number;
  logger: Logger;
  /** Kinds whose actors start on their first order (otherwise such an order is refused). */
  activateOnOrder: ReadonlySet<string>;
}

interface RunningShard {
  shard: number;
  messages: ConsumerMessages | null;
  stopping: boolean;
  /** Orders are handled one after the other. */
  chain: Promise<void>;
}

const RESUME_CONCURRENCY = 32;

export class ShardRunner {
  private readonly running = new Map<number, RunningShard>();
  /** Actors being started for requests: a burst of requests for a new actor starts it once. */
  private readonly startingForRequests = new Map<string, Promise<ActorCell>>();

  constructor(private readonly deps: ShardRunnerDeps) {}

  owned(): number[] {
    return [...this.running.keys()].sort((a, b) => a - b);
  }

  isRunning(shard: number): boolean {
    return this.running.has(shard);
  }

  /** Starts the shard; on failure nothing of it is left running and the caller may try again. */
  async start(shard: number): Promise<void> {
    if (this.running.has(shard)) return;
    const state: RunningShard = { shard, messages: null, stopping: false, chain: Promise.resolve() };
    this.running.set(shard, state);
    try {
      await this.resumeAndConsume(state);
    } catch (err) {
      this.deps.logger.warn({ shard, err: (err as Error).message }, "shard could not start, will retry");
      await this.stop(shard);
      throw err;
    }
  }

  private async resumeAndConsume(state: RunningShard): Promise<void> {
    const shard = state.shard;
    const actors = await this.deps.registry.list(shard);
    const failures: string[] = [];
    for (let i = 0; i < actors.length && !state.stopping; i += RESUME_CONCURRENCY) {
      await Promise.all(
        actors.slice(i, i + RESUME_CONCURRENCY).map(async (actor) => {
          const supervisor = this.deps.supervisors.get(actor.kind);
          if (supervisor === undefined) return this.deps.logger.warn({ kind: actor.kind, key: actor.key }, "registered actor of a kind this node does not run");
          await supervisor.resume(actor.key, actor.input).catch((err: Error) => failures.push(`${actor.kind}/${actor.key}: ${err.message}`));
        }),
      );
    }
    if (failures.length > 0) throw new Error(`${failures.length} actor(s) could not be resumed, first: ${failures[0]}`);
    if (state.stopping) return;
    const consumer = await this.deps.orders.consumer(shard);
    state.messages = await consumer.consume({
      // Per shard, and a node runs many: keep the total buffered small so heartbeats stay on time.
      max_messages: 16,
      // Short pulls with heartbeats: a pull lost with a NATS server is noticed in about two seconds.
      expires: 5_000,
      idle_heartbeat: 1_000,
      callback: (msg) => {
        if (state.stopping) return msg.nak();
        state.chain = state.chain.then(() => this.handle(state, msg));
      },
    });
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

  async stop(shard: number): Promise<void> {
    const state = this.running.get(shard);
    if (state === undefined) return;
    state.stopping = true;
    await state.messages?.close().catch(() => undefined);
    await state.chain;
    const cells = this.deps.host.list().filter((cell) => shardOf(cell.kind, cell.key, this.deps.shards) === shard);
    await Promise.all(cells.map((cell) => this.deps.host.stop(cell.kind, cell.key)));
    this.running.delete(shard);
    this.deps.logger.debug({ shard, actors: cells.length }, "shard stopped");
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.owned().map((shard) => this.stop(shard)));
  }

  private async handle(state: RunningShard, msg: JsMsg): Promise<void> {
    if (state.stopping) return msg.nak();
    const decoded = decodeJson(msg.data, WRAPPED_ORDER_LIMITS);
    const order = decoded.ok ? readKeyedOrder(decoded.value) : decoded.error;
    if (typeof order === "string") {
      this.deps.deadLetters.record(msg.subject, `malformed keyed order: ${order}`, msg.data);
      return msg.ack();
    }
    const supervisor = this.deps.supervisors.get(order.kind);
    if (supervisor === undefined) {
      this.deps.deadLetters.record(msg.subject, `no ${order.kind} actors run on this deployment`, msg.data);
      return msg.ack();
    }
    try {
      switch (order.op) {
        case "start":
          await supervisor.start(order.key, order.input ?? {});
          return msg.ack();
        case "reload":
          await supervisor.reload(order.key, order.input ?? {});
          return msg.ack();
        case "remove":
          await supervisor.remove(order.key);
          return msg.ack();
        case "tell":
          return await this.tell(supervisor, order, msg);
      }
    } catch (err) {
      // A failure of our own (e.g. the store is unreachable): let the stream give it to us again later.
      this.deps.logger.warn({ kind: order.kind, key: order.key, op: order.op, err: (err as Error).message }, "keyed order failed, will be redelivered");
      msg.nak(1_000);
    }
  }

  private async tell(supervisor: FamilySupervisor, order: KeyedOrder, msg: JsMsg): Promise<void> {
    const message = { type: order.message?.type ?? "", payload: order.message?.payload ?? {}, id: order.id };
    // Refused before an actor is started for it; the cell checks it again (receiveFromBus).
    const problem = this.deps.host.busMessageProblem(order.kind, message);
    if (problem !== null) {
      this.deps.deadLetters.record(msg.subject, problem, encodeJson(order.message ?? {}));
      return msg.ack();
    }
    // A finished actor takes nothing more: its supervisor is removing it, and an order for it goes to
    // the actor that follows (started after that removal), or is dead-lettered like any for none.
    let cell: ActorCell | undefined = this.deps.host.get(order.kind, order.key);
    if (cell?.finished === true) cell = undefined;
    if (cell === undefined) {
      if (!this.deps.activateOnOrder.has(order.kind)) {
        this.deps.deadLetters.record(
          msg.subject,
          `no ${order.kind} actor for "${order.key}": it was never added (or was removed)`,
          encodeJson(order.message ?? {}),
        );
        return msg.ack();
      }
      cell = await supervisor.start(order.key, order.input ?? {});
      // Restored from a snapshot saved as it finished (its node stopped before removing it): removed
      // first, in its turn, then a new one.
      if (cell.finished) cell = await supervisor.start(order.key, order.input ?? {});
    }
    cell.receiveFromBus(message, (outcome) => {
      if (outcome === "done") msg.ack();
      else msg.nak();
    });
  }
}
