// Sends orders to keyed actors wherever they live. Published orders go through the durable order
// stream (delivered at least once, applied once). Requests are forwarded to the owning node's inbox so
// the actor answers the requester directly; while the actor moves between nodes, the forward is retried
// until a node takes it, and the requester gets a clear, retryable error if none does in time.
import { randomUUID } from "node:crypto";
import type { ActorHost } from "../actor-host.ts";
import { backoffDelay } from "../backoff.ts";
import { decodeBusJson, decodeJson, encodeJson, isJsonObject } from "../json.ts";
import { failure, type Reply } from "../reply.ts";
import type { Requester } from "../requester.ts";
import { actorKeyProblem, isSafeReplySubject, type Subjects } from "../subjects.ts";
import { type KeyedOperation, MAX_KIND_LENGTH, type OrderStream, WRAPPED_ORDER_LIMITS } from "./order-stream.ts";
import { shardOf } from "./rendezvous.ts";
import type { ShardAssignments } from "./shard-assignments.ts";
import type { ShardRunner } from "./shard-runner.ts";

export interface ForwardedMessage {
  kind: string;
  key: string;
  message: { type: string; payload: Record<string, unknown> };
  replyTo?: string;
  /** Start the actor with this input when it does not run yet (families that start on their first order). */
  input?: Record<string, unknown>;
}

/** What a node answers when asked to hand a message to one of its actors. */
export type InboxAnswer = { accepted: true } | { accepted: false; moved: true } | { accepted: false; error: string };

const FORWARD_BUDGET_MS = 5_000;
/** A stream that is electing a leader (a NATS server was lost) answers again within seconds. */
const PUBLISH_BUDGET_MS = 30_000;
const FORWARD_ATTEMPT_MS = 1_000;
const FORWARD_PAUSE_MS = 100;
const PUBLISH_RETRY = { initialMs: 100, maxMs: 2_000, factor: 2, jitter: 0.2 };

export class KeyedOrders {
  constructor(
    private readonly orders: OrderStream,
    private readonly assignments: ShardAssignments,
    private readonly host: ActorHost,
    private readonly runner: () => ShardRunner | null,
    private readonly requester: Requester,
    private readonly subjects: Subjects,
    private readonly nodeId: string,
    readonly shards: number,
  ) {}

  static inboxSubject(subjects: Subjects, nodeId: string): string {
    return subjects.wire(`caliopen.node.${nodeId}.forward`);
  }

  /**
   * Queues an order for the actor's owner; resolves once it is stored. Retried while the stream is
   * unavailable: the order id makes a retry that did reach the stream a no-op.
   */
  async publish(
    op: KeyedOperation,
    kind: string,
    key: string,
    extra: { input?: Record<string, unknown>; message?: ForwardedMessage["message"]; id?: string } = {},
  ): Promise<void> {
    const { id, ...rest } = extra;
    // An id derived from the order's intake sequence makes a redelivered order a duplicate the stream drops.
    const order = { id: id ?? randomUUID(), op, kind, key, ...rest };
    const shard = shardOf(kind, key, this.shards);
    const deadline = Date.now() + PUBLISH_BUDGET_MS;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.orders.publish(shard, order);
      } catch (err) {
        if (Date.now() >= deadline) throw new Error(`could not queue the order for ${kind}/${key}: ${(err as Error).message}`);
        await new Promise((resolve) => setTimeout(resolve, backoffDelay(PUBLISH_RETRY, attempt)));
      }
    }
  }

  /**
   * Hands a request to the actor, on whichever node owns it. Returns a failure reply when the actor does
   * not exist or could not be reached in time; undefined when the actor took it (and will answer).
   */
  async forward(forwarded: ForwardedMessage): Promise<Reply | undefined> {
    const shard = shardOf(forwarded.kind, forwarded.key, this.shards);
    const deadline = Date.now() + FORWARD_BUDGET_MS;
    let last = "no node owns it";
    while (Date.now() < deadline) {
      const owner = this.assignments.get(shard)?.node;
      let answer: InboxAnswer | null = null;
      const unanswered = (err: Error): null => {
        last = err.message;
        return null;
      };
      if (owner === this.nodeId) answer = await this.acceptHere(forwarded).catch(unanswered);
      else if (owner !== undefined) answer = await this.askNode(owner, forwarded).catch(unanswered);
      if (answer?.accepted) return undefined;
      if (answer !== null && "error" in answer) return failure(answer.error);
      if (answer !== null) last = `node ${owner} no longer owns it`;
      await new Promise((resolve) => setTimeout(resolve, FORWARD_PAUSE_MS));
    }
    return failure(`${forwarded.kind}/${forwarded.key} is moving between nodes (${last}); try again`);
  }

  /**
   * The node inbox's answer for what arrived on it: anyone may publish there, so the envelope is checked
   * here and the message by the actor (receiveFromBus).
   */
  async answerInbox(data: Uint8Array): Promise<InboxAnswer> {
    const decoded = decodeJson(data, WRAPPED_ORDER_LIMITS);
    if (!decoded.ok) return { accepted: false, error: `unreadable forwarded message: ${decoded.error}` };
    const forwarded = readForwarded(decoded.value);
    if (typeof forwarded === "string") return { accepted: false, error: forwarded };
    // Could not start the actor now (the store unreachable): the sender tries again.
    return this.acceptHere(forwarded).catch((): InboxAnswer => ({ accepted: false, moved: true }));
  }

  /**
   * Hands a message for one of this node's actors to it, through its checked entry; an actor that does
   * not run yet is started first when the message says how (`input`) and its family starts that way.
   */
  async acceptHere(forwarded: ForwardedMessage): Promise<InboxAnswer> {
    const runner = this.runner();
    if (runner === null || !runner.isRunning(shardOf(forwarded.kind, forwarded.key, this.shards))) return { accepted: false, moved: true };
    let cell = this.host.get(forwarded.kind, forwarded.key);
    if (cell === undefined && forwarded.input !== undefined) {
      // Refused before the actor is started, as the order stream does; the cell checks it again.
      const problem = this.host.busMessageProblem(forwarded.kind, forwarded.message);
      if (problem !== null) return { accepted: false, error: problem };
      const started = await runner.startForRequest(forwarded.kind, forwarded.key, forwarded.input);
      if (started === "moved") return { accepted: false, moved: true };
      if (started !== "refused") cell = started;
    }
    if (cell === undefined) return { accepted: false, error: `no ${forwarded.kind} actor for "${forwarded.key}"` };
    cell.receiveFromBus({ ...forwarded.message, ...(forwarded.replyTo !== undefined && { replyTo: forwarded.replyTo }) });
    return { accepted: true };
  }

  private async askNode(node: string, forwarded: ForwardedMessage): Promise<InboxAnswer> {
    const reply = await this.requester.request(KeyedOrders.inboxSubject(this.subjects, node), encodeJson(forwarded), FORWARD_ATTEMPT_MS);
    const decoded = decodeBusJson(reply.data);
    const answer = decoded.ok && isJsonObject(decoded.value) ? decoded.value : null;
    if (answer?.accepted === true) return { accepted: true };
    if (answer?.moved === true) return { accepted: false, moved: true };
    if (typeof answer?.error === "string") return { accepted: false, error: answer.error };
    throw new Error(`node ${node} answered something unreadable`);
  }
}

/** A forwarded message's envelope, checked, or why it is unusable. */
function readForwarded(value: unknown): ForwardedMessage | string {
  if (!isJsonObject(value)) return "a forwarded message must be a JSON object";
  const { kind, key, message, replyTo, input } = value;
  if (typeof kind !== "string" || kind === "" || kind.length > MAX_KIND_LENGTH) return `a forwarded message needs a "kind" of 1-${MAX_KIND_LENGTH} characters`;
  const badKey = actorKeyProblem(key);
  if (badKey !== null) return badKey;
  if (!isJsonObject(message) || typeof message.type !== "string" || !isJsonObject(message.payload))
    return `a forwarded message needs "message": {type: string, payload: object}`;
  if (replyTo !== undefined && (typeof replyTo !== "string" || !isSafeReplySubject(replyTo))) return "a forwarded message's reply subject is unusable";
  if (input !== undefined && !isJsonObject(input)) return `a forwarded message's "input" must be an object`;
  return {
    kind,
    key: key as string,
    message: { type: message.type, payload: message.payload },
    ...(replyTo !== undefined && { replyTo }),
    ...(input !== undefined && { input }),
  };
}
