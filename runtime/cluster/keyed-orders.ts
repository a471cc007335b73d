// Sends orders to keyed actors wherever they live, straight to the node that runs the actor's shard.
// A keyed order (published orders, lifecycle orders) is applied there and answered once the actor's
// state after it is saved; until then the sender keeps it, handing it over again to whichever node owns
// the shard, so an order comes once through JetStream (the intake that captured it) and is acked there
// only when applied. The actor drops an order it has already applied (its id). Requests are forwarded
// the same way, with the requester's inbox, so the actor answers the requester directly; the requester
// gets a clear, retryable error if no node takes it in time.
import { randomUUID } from "node:crypto";
import type { ActorHost } from "../actor-host.ts";
import { backoffDelay } from "../backoff.ts";
import { decodeBusJson, decodeJson, encodeJson, isJsonObject } from "../json.ts";
import { RetryLater } from "../orders.ts";
import { failure, type Reply } from "../reply.ts";
import type { Requester } from "../requester.ts";
import { actorKeyProblem, isSafeReplySubject, type Subjects } from "../subjects.ts";
import { type KeyedOperation, type KeyedOrder, MAX_KIND_LENGTH, readKeyedOrder, WRAPPED_ORDER_LIMITS } from "./keyed-order.ts";
import { shardOf } from "./rendezvous.ts";
import type { ShardAssignments } from "./shard-assignments.ts";
import type { ApplyOutcome, ShardRunner } from "./shard-runner.ts";

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

/** What a node answers when handed a keyed order: its ApplyOutcome, or why the order is unusable. */
type ApplyAnswer = { outcome: ApplyOutcome } | { error: string };

const FORWARD_BUDGET_MS = 5_000;
const FORWARD_ATTEMPT_MS = 1_000;
const FORWARD_PAUSE_MS = 100;
/**
 * How long an order is handed over again before its sender gives up for now (a durable order is then
 * offered again later by the intake): covers a failover, and a store electing a leader.
 */
const APPLY_BUDGET_MS = 30_000;
/** The owner answers once the actor's state is saved; a node that died meanwhile never does. */
const APPLY_ATTEMPT_MS = 5_000;
const APPLY_RETRY = { initialMs: 50, maxMs: 1_000, factor: 2, jitter: 0.2 };
/**
 * Keyed orders from other nodes being applied here at once: each is held until its actor's state is
 * saved, so beyond this a sender is told to come back (and its order waits in its intake).
 */
export const MAX_APPLYING_FROM_INBOX = 1_024;

export class KeyedOrders {
  private applyingFromInbox = 0;

  constructor(
    private readonly assignments: ShardAssignments,
    private readonly host: ActorHost,
    private readonly runner: () => ShardRunner | null,
    private readonly requester: Requester,
    private readonly subjects: Subjects,
    private readonly nodeId: string,
    readonly shards: number,
  ) {}

  /** Where a node takes requests for its actors. */
  static inboxSubject(subjects: Subjects, nodeId: string): string {
    return subjects.wire(`caliopen.node.${nodeId}.forward`);
  }

  /** Where a node takes keyed orders for its actors. */
  static applySubject(subjects: Subjects, nodeId: string): string {
    return subjects.wire(`caliopen.node.${nodeId}.apply`);
  }

  /**
   * Has the actor's owner apply the order; resolves once the actor's state after it is saved (or the
   * owner kept it as a dead letter: it can never apply). Handed over again while the shard moves or its
   * owner does not answer; throws RetryLater when no node applied it within the budget, or as soon
   * as `signal` aborts (its caller gave up: a node stopping).
   */
  async apply(
    op: KeyedOperation,
    kind: string,
    key: string,
    extra: { input?: Record<string, unknown>; message?: ForwardedMessage["message"]; id?: string; signal?: AbortSignal } = {},
  ): Promise<void> {
    const { id, signal, ...rest } = extra;
    // An id derived from the order's intake sequence makes a redelivered order one the actor drops.
    const order: KeyedOrder = { id: id ?? randomUUID(), op, kind, key, ...rest };
    const shard = shardOf(kind, key, this.shards);
    const deadline = Date.now() + APPLY_BUDGET_MS;
    let last = "no node owns it";
    for (let attempt = 1; ; attempt++) {
      const owner = this.assignments.get(shard)?.node;
      let outcome: ApplyOutcome | undefined;
      if (owner === this.nodeId) {
        // Bounded like a remote attempt: an actor that never settles must not hold the order (and its
        // entry point's slot) for good; handed over again, it is dropped or settled by the same actor.
        outcome = await withinAttempt(this.runner()?.apply(order) ?? Promise.resolve<ApplyOutcome>("moved"));
        if (outcome === undefined) last = `not applied here within ${APPLY_ATTEMPT_MS} ms`;
      } else if (owner !== undefined) {
        const answer = await this.askNodeToApply(owner, order);
        if ("unanswered" in answer) last = `node ${owner} did not answer: ${answer.unanswered}`;
        else outcome = answer.outcome;
      }
      if (outcome === "done") return;
      if (outcome === "moved") last = `node ${owner} does not run it`;
      else if (outcome === "retry") last = `node ${owner} could not apply it for now`;
      if (Date.now() >= deadline) throw new RetryLater(`no node applied ${op} for ${kind}/${key} in time (${last})`);
      if (signal?.aborted) throw new RetryLater(`${op} for ${kind}/${key} given up (${last})`);
      await pause(backoffDelay(APPLY_RETRY, attempt), signal);
    }
  }

  /** A keyed order from another node: checked (anyone may publish on the inbox), applied if we may. */
  async answerApply(data: Uint8Array): Promise<ApplyAnswer> {
    const decoded = decodeJson(data, WRAPPED_ORDER_LIMITS);
    const order = decoded.ok ? readKeyedOrder(decoded.value) : `unreadable keyed order: ${decoded.error}`;
    if (typeof order === "string") return { error: order };
    const runner = this.runner();
    if (runner === null) return { outcome: "moved" };
    if (this.applyingFromInbox >= MAX_APPLYING_FROM_INBOX) return { outcome: "retry" };
    this.applyingFromInbox += 1;
    try {
      return { outcome: await runner.apply(order) };
    } finally {
      this.applyingFromInbox -= 1;
    }
  }

  /** Its answer, or why there was none (the node died, or is not listening yet): the shard's owner is asked again. */
  private async askNodeToApply(node: string, order: KeyedOrder): Promise<{ outcome: ApplyOutcome } | { unanswered: string }> {
    let reply: Awaited<ReturnType<Requester["request"]>>;
    try {
      reply = await this.requester.request(KeyedOrders.applySubject(this.subjects, node), encodeJson(order), APPLY_ATTEMPT_MS);
    } catch (err) {
      return { unanswered: (err as Error).message };
    }
    const decoded = decodeBusJson(reply.data);
    const answer = decoded.ok && isJsonObject(decoded.value) ? decoded.value : null;
    if (answer?.outcome === "done" || answer?.outcome === "moved" || answer?.outcome === "retry") return { outcome: answer.outcome };
    // Not worth handing over again: the same node would refuse it the same way.
    if (typeof answer?.error === "string") throw new Error(`node ${node} refused the order: ${answer.error}`);
    throw new Error(`node ${node} answered something unreadable`);
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
      try {
        if (owner === this.nodeId) answer = await this.acceptHere(forwarded);
        else if (owner !== undefined) answer = await this.askNode(owner, forwarded);
      } catch (err) {
        last = (err as Error).message;
      }
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
    if (runner === null || !runner.takesOrders(shardOf(forwarded.kind, forwarded.key, this.shards))) return { accepted: false, moved: true };
    let cell = this.host.get(forwarded.kind, forwarded.key);
    if (cell === undefined && forwarded.input !== undefined) {
      // Refused before the actor is started, as a keyed order is; the cell checks it again.
      const problem = this.host.busMessageProblem(forwarded.kind, forwarded.message);
      if (problem !== null) return { accepted: false, error: problem };
      const started = await runner.startForRequest(forwarded.kind, forwarded.key, forwarded.input);
      if (started === "moved") return { accepted: false, moved: true };
      if (started !== "refused") cell = started;
    }
    if (cell === undefined) return { accepted: false, error: `no ${forwarded.kind} actor for "${forwarded.key}"` };
    const { type, payload } = forwarded.message;
    cell.receiveFromBus({ type, payload, ...(forwarded.replyTo !== undefined && { replyTo: forwarded.replyTo }) });
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

/** The outcome, or undefined when it takes longer than one attempt. */
function withinAttempt(applying: Promise<ApplyOutcome>): Promise<ApplyOutcome | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), APPLY_ATTEMPT_MS);
  });
  return Promise.race([applying, late]).finally(() => clearTimeout(timer));
}

/** Waits `ms`, or less when `signal` aborts meanwhile. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
