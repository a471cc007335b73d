// One live actor on this node: the XState actor, its NATS subscription (its mailbox), its deadlines
// (actor-deadlines.ts), its snapshots (snapshot-writer.ts) and its published transitions
// (transition-log.ts). A cell may also start resting (resting-index.ts): its mailbox open and one timer
// armed, its snapshot restored only when that timer or a message wakes it. Messages reach the machine by one of two
// paths: `receiveFromBus` for whatever came over NATS (the mailbox, the node inbox, the keyed-order
// stream), checked against what the family accepts; `receive` for the node's own events
// (deadlines, runtime notices, messages already checked), unchecked.

import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { type AnyActorRef, type AnyMachineSnapshot, type AnyStateMachine, createActor } from "xstate";
import { ActorDeadlines } from "./actor-deadlines.ts";
import { type ActorInput, type ActorMessage, type ActorPorts, BUSY_TAG } from "./actor-family.ts";
import { readMailboxMessage } from "./actor-mailbox.ts";
import { backoffDelay, DEFAULT_BACKOFF } from "./backoff.ts";
import { type Accepted, busMessageProblem } from "./bus-messages.ts";
import { DeadlineTimers, readDeadlines } from "./deadlines.ts";
import { encodeJson, isJsonObject } from "./json.ts";
import { redactSecrets } from "./redact.ts";
import { failure } from "./reply.ts";
import { RestRecords } from "./rest-records.ts";
import type { RestingIndex } from "./resting-index.ts";
import { SnapshotConflict, type SnapshotStore } from "./snapshot-store.ts";
import { type SettleCallback, SnapshotWriter } from "./snapshot-writer.ts";
import { isSafeReplySubject, type Subjects } from "./subjects.ts";
import { TransitionLog } from "./transition-log.ts";

export type CellStatus = "running" | "crashed" | "stopped";

export type { SettleCallback };

interface Pending {
  message: ActorMessage;
  settle: SettleCallback | undefined;
}

export interface CellEnvironment {
  nc: NatsConnection;
  subjects: Subjects;
  nodeId: string;
  /** Unique per process: written with every snapshot to recognise our own earlier writes. */
  incarnation: string;
  /** Bound to the family's `kind` (by ActorHost): lines add only what it lacks, so no key is repeated. */
  logger: Logger;
  ports: ActorPorts;
  /** The message types (and their payload schemas) the family takes from the bus. */
  accepts: Accepted;
  /** See ActorFamily.upgradeContext. */
  upgradeContext?(saved: Record<string, unknown>): Record<string, unknown>;
  /** null when the family does not persist. */
  store: SnapshotStore | null;
  /** Where passivated actors are recorded as resting (null: nowhere, e.g. a node without a cluster). */
  resting(): RestingIndex | null;
  /** Runs the restore of a resting actor woken up, a bounded number at a time node-wide. */
  limitWakes(restore: () => Promise<void>): Promise<void>;
  onCrash(cell: ActorCell, error: Error): void;
  /** The cell lost a compare-and-swap on its snapshot: someone else owns the key now. */
  onFenced(cell: ActorCell, error: Error): void;
  /** The machine reached a final state: the actor has nothing left to do and can be removed. */
  onFinished(cell: ActorCell): void;
  /** A published message the actor could not take (malformed or not accepted in its state). */
  onRejected(cell: ActorCell, reason: string, data: Uint8Array): void;
}

export interface ActorSummary {
  kind: string;
  key: string;
  subject: string;
  node: string;
  status: CellStatus;
  state: unknown;
  since: string;
  restarts: number;
  /** When this node activated the actor. */
  activeSince: string;
  busy: boolean;
  lastError: { message: string; at: string } | null;
  deadlines: Record<string, string>;
}

// Messages kept while a crashed actor waits for its restart (or a resting one for its restore); beyond this, requests get an error.
const MAX_BUFFERED = 1_000;
const WAKE_EVENT = "rest.wake";

export class ActorCell {
  readonly subject: string;
  status: CellStatus = "stopped";
  restarts = 0;
  lastError: { message: string; at: number } | null = null;
  private activatedAt = Date.now();
  private actor: AnyActorRef | null = null;
  private subscription: Subscription | null = null;
  private readonly deadlines: ActorDeadlines;
  private readonly transitions: TransitionLog;
  private buffered: Pending[] | null = null;
  // A passivated cell keeps its machine's persisted snapshot instead of a live XState actor.
  private dormant: unknown = undefined;
  private lastActivity = Date.now();
  /** Started resting: not restored yet; the timer wakes it at its earliest deadline. */
  private unrestored = false;
  private wakeTimer: DeadlineTimers | null = null;
  private restingUntil: number | null = null;
  private waking: Promise<void> | null = null;
  /** The event being handled right now; null when a transition comes from inside (invoked work done, a delay). */
  private receiving: string | null = null;
  private readonly writer: SnapshotWriter;
  private readonly rests: RestRecords;
  private finishReported = false;

  /** Its machine reached a final state: it takes nothing more, and its supervisor removes it. */
  get finished(): boolean {
    return this.finishReported;
  }

  constructor(
    readonly kind: string,
    readonly key: string,
    private readonly machine: AnyStateMachine,
    private readonly input: ActorInput,
    private readonly env: CellEnvironment,
  ) {
    this.subject = env.subjects.actor(kind, key);
    this.writer = new SnapshotWriter(env.store, { kind, key, nodeId: env.nodeId, incarnation: env.incarnation }, env.logger, (error) =>
      env.onFenced(this, error),
    );
    this.rests = new RestRecords(() => env.resting(), this.writer, input, env.logger);
    this.transitions = new TransitionLog(env.nc, { kind, key, node: env.nodeId, subject: env.subjects.transitions(kind, key) });
    this.deadlines = new ActorDeadlines({
      running: () => this.actor !== null && this.status === "running",
      takes: (message) => this.actor !== null && (this.actor.getSnapshot() as AnyMachineSnapshot).can(message),
      receive: (message) => this.receive(message),
    });
  }

  /** Restores the stored snapshot (if any, fencing its previous writer), starts the machine and opens the mailbox. */
  async activate(): Promise<void> {
    await this.writer.restore();
    this.activatedAt = Date.now();
    this.subscription = this.env.nc.subscribe(this.subject, {
      callback: (err, msg) => {
        if (err === null) this.onNatsMessage(msg);
      },
    });
    this.startMachine();
  }

  /**
   * Opens the mailbox of an actor recorded as resting, without restoring it: it is restored (and its
   * previous writer fenced) when `wakeAt` comes or a message does (null: only a message).
   */
  rest(wakeAt: number | null): void {
    this.unrestored = true;
    this.rests.placedResting();
    this.status = "running";
    this.activatedAt = Date.now();
    this.subscription = this.env.nc.subscribe(this.subject, {
      callback: (err, msg) => {
        if (err === null) this.onNatsMessage(msg);
      },
    });
    this.restingUntil = wakeAt;
    if (wakeAt === null) return;
    this.wakeTimer = new DeadlineTimers(() => this.wake());
    this.wakeTimer.sync({ deadlines: { [WAKE_EVENT]: wakeAt } });
  }

  get resting(): boolean {
    return this.unrestored;
  }

  private wake(): void {
    if (!this.unrestored || this.waking !== null || this.status === "stopped") return;
    this.waking = this.env
      .limitWakes(() => this.restoreFromRest())
      .finally(() => {
        this.waking = null;
      });
  }

  private async restoreFromRest(): Promise<void> {
    for (let attempt = 1; this.status !== "stopped"; attempt++) {
      try {
        await this.writer.restore();
        break;
      } catch (err) {
        if (err instanceof SnapshotConflict) return this.env.onFenced(this, err);
        this.env.logger.warn({ key: this.key, err: (err as Error).message, attempt }, "resting actor could not be restored, retrying");
        await new Promise((resolve) => setTimeout(resolve, backoffDelay(DEFAULT_BACKOFF, attempt)));
      }
    }
    if (this.status === "stopped") return;
    this.unrestored = false;
    this.wakeTimer?.clear();
    this.wakeTimer = null;
    this.rests.waking();
    this.startMachine();
  }

  /** Starts the machine again from its last settled snapshot (after a crash). */
  restart(): void {
    if (this.status !== "crashed") return;
    this.restarts += 1;
    this.startMachine();
  }

  private startMachine(from: unknown = this.writer.settled): void {
    const settled = this.upgraded(from);
    const options = settled === undefined ? { input: this.input } : { snapshot: settled as never, input: this.input };
    let actor: AnyActorRef;
    try {
      actor = createActor(this.machine, options);
    } catch (err) {
      this.crash(err as Error);
      return;
    }
    this.actor = actor;
    this.status = "running";
    actor.subscribe({
      next: (snapshot) => this.onSnapshot(actor, snapshot as AnyMachineSnapshot),
      error: (err) => this.crash(err instanceof Error ? err : new Error(String(err))),
    });
    actor.start();
    if (this.actor === actor && this.status === "running") {
      this.onSnapshot(actor, actor.getSnapshot() as AnyMachineSnapshot);
      this.flushBuffered();
    }
  }

  /** A saved snapshot with its context as this release reads it (see ActorFamily.upgradeContext). */
  private upgraded(snapshot: unknown): unknown {
    const upgrade = this.env.upgradeContext;
    if (upgrade === undefined || !isJsonObject(snapshot) || !isJsonObject(snapshot.context)) return snapshot;
    return { ...snapshot, context: upgrade(snapshot.context) };
  }

  /**
   * The one entry for messages that came from the bus (mailbox, node inbox, keyed orders): refuses a
   * type the family does not accept, a payload that fails its schema, or a reply subject the node must
   * not publish to (a request gets an error reply, a published message becomes a dead letter), then
   * takes it like `receive`.
   */
  receiveFromBus(message: ActorMessage, settle?: SettleCallback): void {
    if (message.replyTo !== undefined && !isSafeReplySubject(message.replyTo)) {
      this.env.logger.warn({ key: this.key, replyLength: message.replyTo.length }, "message with an unusable reply subject dropped without a reply");
      settle?.("done");
      return;
    }
    const problem = busMessageProblem(this.kind, this.env.accepts, message);
    if (problem !== null) {
      this.refuse(message, problem);
      settle?.("done");
      return;
    }
    this.receive(message, settle);
  }

  /**
   * Delivers an event of the node's own (a deadline, a runtime notice, a message already checked by
   * `receiveFromBus`); refuses what the current state does not accept. Never give it bus input.
   */
  receive(message: ActorMessage, settle?: SettleCallback): void {
    this.lastActivity = Date.now();
    // (A stopped cell takes nothing: the message goes to the actor's next owner.)
    if (this.unrestored && this.status !== "stopped") {
      this.keepUntilRestored(message, settle);
      return;
    }
    if (this.dormant !== undefined) this.revive();
    if (message.id !== undefined && this.writer.hasSeen(message.id)) {
      // A redelivery of what this state already reflects: done once that state is saved.
      if (settle !== undefined) this.writer.settleWhenSaved(settle);
      return;
    }
    if (this.status !== "running" || this.actor === null) {
      if (this.status === "crashed" && (this.buffered?.length ?? 0) < MAX_BUFFERED) {
        this.buffered ??= [];
        this.buffered.push({ message, settle });
        return;
      }
      if (this.status === "stopped" && settle !== undefined) {
        settle("retry");
        return;
      }
      this.refuse(message, `actor ${this.kind}/${this.key} is ${this.status}, try again later`);
      settle?.("done");
      return;
    }
    const snapshot = this.actor.getSnapshot() as AnyMachineSnapshot;
    if (!snapshot.can(message)) {
      this.refuse(message, `actor ${this.kind}/${this.key} does not accept "${message.type}" in state ${JSON.stringify(snapshot.value)}`);
      settle?.("done");
      return;
    }
    if (message.id !== undefined) this.writer.remember(message.id);
    // XState handles the event synchronously: transitions seen meanwhile were caused by it.
    this.receiving = message.type;
    try {
      this.actor.send(message);
    } finally {
      this.receiving = null;
    }
    // XState handles the event synchronously: a state change has already queued its snapshot write.
    if (settle !== undefined) this.writer.settleWhenSaved(settle);
  }

  /**
   * Delivers a message only if the current state takes it; otherwise drops it quietly (no dead letter,
   * no reply). For notices the runtime itself sends, such as `reloaded`, that machines may ignore.
   */
  notify(message: ActorMessage): boolean {
    if (this.unrestored) return false;
    if (this.dormant !== undefined) this.revive();
    if (this.status !== "running" || this.actor === null) return false;
    if (!(this.actor.getSnapshot() as AnyMachineSnapshot).can(message)) return false;
    this.receive(message);
    return true;
  }

  /**
   * Drops the XState actor of an idle cell (not busy, nothing invoked), keeping its persisted snapshot;
   * its mailbox and deadlines stay, and the next message or deadline brings the machine back. An idle
   * actor then costs its snapshot instead of a whole XState actor system.
   */
  passivate(idleForMs: number): boolean {
    if (this.status !== "running" || this.actor === null || Date.now() - this.lastActivity < idleForMs) return false;
    const snapshot = this.actor.getSnapshot() as AnyMachineSnapshot;
    if (snapshot.status !== "active" || snapshot.hasTag(BUSY_TAG) || Object.keys(snapshot.children).length > 0) return false;
    const dormant = this.actor.getPersistedSnapshot();
    this.dormant = dormant;
    const actor = this.actor;
    this.actor = null;
    actor.stop();
    if (this.env.store !== null) this.rests.passivated(dormant, () => this.dormant === dormant && this.status === "running");
    return true;
  }

  /** Passivated, or resting and not restored yet: no XState actor in memory. */
  get passivated(): boolean {
    return this.dormant !== undefined || this.unrestored;
  }

  private revive(): void {
    const dormant = this.dormant;
    this.dormant = undefined;
    this.rests.waking();
    if (this.status === "running") this.startMachine(dormant);
  }

  private keepUntilRestored(message: ActorMessage, settle: SettleCallback | undefined): void {
    if ((this.buffered?.length ?? 0) >= MAX_BUFFERED) {
      if (settle !== undefined) settle("retry");
      else this.refuse(message, `actor ${this.kind}/${this.key} is being restored, try again later`);
      return;
    }
    this.buffered ??= [];
    this.buffered.push({ message, settle });
    this.wake();
  }

  get busy(): boolean {
    if (this.actor === null || this.status !== "running") return false;
    return (this.actor.getSnapshot() as AnyMachineSnapshot).hasTag(BUSY_TAG);
  }

  /** Closes the mailbox, waits for the last snapshot write, stops the machine. `forget` drops the snapshot. */
  async stop(options: { forget?: boolean } = {}): Promise<void> {
    const wasRunning = this.status !== "stopped";
    this.status = "stopped";
    if (this.subscription !== null) {
      this.subscription.unsubscribe();
      this.subscription = null;
    }
    this.deadlines.clear();
    this.wakeTimer?.clear();
    this.wakeTimer = null;
    this.actor?.stop();
    this.actor = null;
    this.dormant = undefined;
    // Buffered messages never reached the machine: whoever runs the actor next takes them.
    for (const { message, settle } of this.buffered ?? []) {
      if (settle !== undefined) settle("retry");
      else this.refuse(message, `actor ${this.kind}/${this.key} was stopped`);
    }
    this.buffered = null;
    await this.writer.close();
    if (options.forget) await this.writer.forget();
    if (wasRunning) this.env.logger.debug({ key: this.key }, "actor stopped");
  }

  summary(): ActorSummary {
    const deadlines: Record<string, string> = {};
    const context = this.currentContext();
    for (const [event, at] of Object.entries(readDeadlines(context))) deadlines[event] = new Date(at).toISOString();
    if (this.unrestored && this.restingUntil !== null) deadlines[WAKE_EVENT] = new Date(this.restingUntil).toISOString();
    return {
      kind: this.kind,
      key: this.key,
      subject: this.subject,
      node: this.env.nodeId,
      status: this.status,
      state: this.transitions.state,
      since: new Date(this.transitions.since).toISOString(),
      restarts: this.restarts,
      activeSince: new Date(this.activatedAt).toISOString(),
      busy: this.busy,
      lastError: this.lastError === null ? null : { message: this.lastError.message, at: new Date(this.lastError.at).toISOString() },
      deadlines,
    };
  }

  /** The summary plus the context, with secrets redacted. */
  inspect(): Record<string, unknown> {
    return {
      ...this.summary(),
      passivated: this.passivated,
      resting: this.unrestored,
      context: redactSecrets(this.currentContext() ?? null),
      revision: this.writer.revision,
    };
  }

  private currentContext(): unknown {
    if (this.actor !== null) return (this.actor.getSnapshot() as AnyMachineSnapshot).context;
    return (this.upgraded(this.dormant ?? this.writer.settled) as { context?: unknown } | undefined)?.context;
  }

  private onNatsMessage(msg: Msg): void {
    const replyTo = msg.reply === undefined || msg.reply === "" ? undefined : msg.reply;
    if (replyTo !== undefined && !isSafeReplySubject(replyTo)) {
      this.env.logger.warn({ key: this.key, replyLength: replyTo.length }, "request with an unusable reply subject dropped without a reply");
      return;
    }
    const message = readMailboxMessage(msg.data, replyTo, `${this.kind}/${this.key}`);
    if (typeof message === "string") {
      if (replyTo !== undefined) this.env.ports.reply(replyTo, failure(message));
      else this.env.onRejected(this, message, msg.data);
      return;
    }
    this.receiveFromBus(message);
  }

  private onSnapshot(actor: AnyActorRef, snapshot: AnyMachineSnapshot): void {
    if (actor !== this.actor || snapshot.status === "error") return;
    try {
      this.afterTransition(actor, snapshot);
    } catch (err) {
      // e.g. publishing on a connection that is closing: the machine itself is fine.
      this.env.logger.warn({ key: this.key, err: (err as Error).message }, "after-transition work failed");
    }
  }

  private afterTransition(actor: AnyActorRef, snapshot: AnyMachineSnapshot): void {
    this.transitions.observe(snapshot.value, this.receiving);
    this.deadlines.sync(snapshot.context);
    if (this.deadlines.hasOverdue) {
      queueMicrotask(() => {
        if (actor === this.actor && this.status === "running") this.deadlines.receiveOverdue((actor.getSnapshot() as AnyMachineSnapshot).context);
      });
    }
    if (this.env.store !== null) this.writer.persist(actor.getPersistedSnapshot());
    if (snapshot.status === "done" && !this.finishReported) {
      this.finishReported = true;
      this.env.onFinished(this);
    }
  }

  private crash(error: Error): void {
    if (this.status === "stopped") return;
    this.status = "crashed";
    this.lastError = { message: error.message, at: Date.now() };
    this.deadlines.clear();
    const actor = this.actor;
    this.actor = null;
    try {
      actor?.stop();
    } catch {
      // already failed
    }
    this.env.onCrash(this, error);
  }

  private flushBuffered(): void {
    const pending = this.buffered;
    this.buffered = null;
    // Already checked when they arrived.
    for (const { message, settle } of pending ?? []) this.receive(message, settle);
  }

  private refuse(message: ActorMessage, reason: string): void {
    if (message.replyTo !== undefined) {
      this.env.ports.reply(message.replyTo, failure(reason));
      return;
    }
    this.env.onRejected(this, reason, encodeJson({ type: message.type, payload: message.payload }));
  }
}
