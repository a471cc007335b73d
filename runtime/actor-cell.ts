// One live actor on this node: the XState actor, its NATS subscription (its mailbox), its durable
// timers and the persistence of its snapshot.
import { createActor, type AnyActorRef, type AnyMachineSnapshot, type AnyStateMachine } from "xstate";
import type { NatsConnection, Subscription, Msg } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { BUSY_TAG, type ActorInput, type ActorMessage, type ActorPorts } from "./actor-family.ts";
import { DeadlineTimers, readDeadlines } from "./deadlines.ts";
import { decodeJson, encodeJson, isJsonObject } from "./json.ts";
import { redactSecrets } from "./redact.ts";
import { failure } from "./reply.ts";
import { SNAPSHOT_SCHEMA_VERSION, SnapshotConflict, type SnapshotStore } from "./snapshot-store.ts";
import type { Subjects } from "./subjects.ts";
import { backoffDelay, DEFAULT_BACKOFF } from "./backoff.ts";

export type CellStatus = "running" | "crashed" | "stopped";

/**
 * Told once about a delivered message: "done" when the actor's state after it is saved (or needed no
 * saving, or the message was refused), "retry" when the actor stopped before that and another owner
 * should take the message again.
 */
export type SettleCallback = (outcome: "done" | "retry") => void;

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
  logger: Logger;
  ports: ActorPorts;
  /** null when the family does not persist. */
  store: SnapshotStore | null;
  onCrash(cell: ActorCell, error: Error): void;
  /** The cell lost a compare-and-swap on its snapshot: someone else owns the key now. */
  onFenced(cell: ActorCell, error: Error): void;
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

// Messages kept while a crashed actor waits for its restart; beyond this, requests get an error.
const MAX_BUFFERED = 1_000;
// How many recent message ids an actor remembers to drop redeliveries.
const SEEN_IDS = 64;

export class ActorCell {
  readonly subject: string;
  status: CellStatus = "stopped";
  restarts = 0;
  lastError: { message: string; at: number } | null = null;
  private stateValue: unknown = null;
  private since = Date.now();
  private activatedAt = Date.now();
  private actor: AnyActorRef | null = null;
  private subscription: Subscription | null = null;
  private timers: DeadlineTimers | null = null;
  private buffered: Pending[] | null = null;
  // Settle callbacks waiting for the next snapshot write to complete.
  private awaitingSave: SettleCallback[] | null = null;
  private lastEvent = "";
  // Persistence: the latest settled snapshot, what was last written, and the write loop.
  private settled: unknown = undefined;
  private savedJson: string | null = null;
  private revision = 0;
  private pendingSave: unknown = undefined;
  private seen: string[] | null = null;
  private saving: Promise<void> | null = null;
  // True exactly while writeLoop runs (cleared synchronously, unlike `saving`).
  private writing = false;

  constructor(
    readonly kind: string,
    readonly key: string,
    private readonly machine: AnyStateMachine,
    private readonly input: ActorInput,
    private readonly env: CellEnvironment,
  ) {
    this.subject = env.subjects.actor(kind, key);
  }

  /**
   * Restores the stored snapshot (if any), starts the machine and opens the mailbox. A snapshot last
   * written by another node is written again first: that bumps its revision, so the previous owner's
   * late writes fail their compare-and-swap (fencing).
   */
  async activate(): Promise<void> {
    if (this.env.store !== null) {
      const loaded = await this.env.store.load(this.kind, this.key);
      if (loaded !== null) {
        this.settled = loaded.record.snapshot;
        this.seen = loaded.record.seen ?? null;
        this.revision = loaded.revision;
        if (loaded.record.owner !== this.env.incarnation) {
          const claimed = { ...loaded.record, node: this.env.nodeId, owner: this.env.incarnation, savedAt: new Date().toISOString() };
          this.revision = await this.env.store.save(claimed, loaded.revision);
        }
        this.savedJson = recordJson(loaded.record.snapshot, this.seen);
      }
    }
    this.activatedAt = Date.now();
    this.subscription = this.env.nc.subscribe(this.subject, {
      callback: (err, msg) => {
        if (err === null) this.onNatsMessage(msg);
      },
    });
    this.startMachine();
  }

  /** Starts the machine again from its last settled snapshot (after a crash). */
  restart(): void {
    if (this.status !== "crashed") return;
    this.restarts += 1;
    this.startMachine();
  }

  private startMachine(): void {
    const options = this.settled === undefined ? { input: this.input } : { snapshot: this.settled as never, input: this.input };
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

  /** Delivers a message to the machine; refuses what the current state does not accept. */
  deliver(message: ActorMessage, settle?: SettleCallback): void {
    if (message.id !== undefined && this.seen?.includes(message.id)) {
      // A redelivery of what this state already reflects: done once that state is saved.
      if (settle !== undefined) this.settleWhenSaved(settle);
      return;
    }
    if (this.status !== "running" || this.actor === null) {
      if (this.status === "crashed" && (this.buffered?.length ?? 0) < MAX_BUFFERED) {
        (this.buffered ??= []).push({ message, settle });
        return;
      }
      if (this.status === "stopped" && settle !== undefined) return settle("retry");
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
    this.lastEvent = message.type;
    if (message.id !== undefined) this.remember(message.id);
    this.actor.send(message);
    // XState handles the event synchronously: a state change has already queued its snapshot write.
    if (settle !== undefined) this.settleWhenSaved(settle);
  }

  private settleWhenSaved(settle: SettleCallback): void {
    if (this.env.store === null || (!this.writing && this.pendingSave === undefined)) settle("done");
    else (this.awaitingSave ??= []).push(settle);
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
    this.timers?.clear();
    this.timers = null;
    this.actor?.stop();
    this.actor = null;
    // Buffered messages never reached the machine: whoever runs the actor next takes them.
    for (const { message, settle } of this.buffered ?? []) {
      if (settle !== undefined) settle("retry");
      else this.refuse(message, `actor ${this.kind}/${this.key} was stopped`);
    }
    this.buffered = null;
    if (this.saving !== null) await this.saving.catch(() => undefined);
    this.settleAwaiting("retry");
    if (options.forget && this.env.store !== null) {
      await this.env.store.remove(this.kind, this.key);
    }
    if (wasRunning) this.env.logger.debug({ kind: this.kind, key: this.key }, "actor stopped");
  }

  summary(): ActorSummary {
    const deadlines: Record<string, string> = {};
    const context = this.actor === null ? undefined : (this.actor.getSnapshot() as AnyMachineSnapshot).context;
    for (const [event, at] of Object.entries(readDeadlines(context))) deadlines[event] = new Date(at).toISOString();
    return {
      kind: this.kind,
      key: this.key,
      subject: this.subject,
      node: this.env.nodeId,
      status: this.status,
      state: this.stateValue,
      since: new Date(this.since).toISOString(),
      restarts: this.restarts,
      activeSince: new Date(this.activatedAt).toISOString(),
      busy: this.busy,
      lastError: this.lastError === null ? null : { message: this.lastError.message, at: new Date(this.lastError.at).toISOString() },
      deadlines,
    };
  }

  /** The summary plus the context, with secrets redacted. */
  inspect(): Record<string, unknown> {
    const snapshot = this.actor === null ? null : (this.actor.getSnapshot() as AnyMachineSnapshot);
    return {
      ...this.summary(),
      context: redactSecrets(snapshot?.context ?? (this.settled as { context?: unknown } | undefined)?.context ?? null),
      revision: this.revision,
    };
  }

  private onNatsMessage(msg: Msg): void {
    const decoded = decodeJson(msg.data);
    const replyTo = msg.reply === undefined || msg.reply === "" ? undefined : msg.reply;
    if (!decoded.ok || !isJsonObject(decoded.value) || typeof decoded.value.type !== "string") {
      const reason = decoded.ok ? `message for actor ${this.kind}/${this.key} must be a JSON object with a string "type"` : decoded.error;
      if (replyTo !== undefined) this.env.ports.reply(replyTo, failure(reason));
      else this.env.onRejected(this, reason, msg.data);
      return;
    }
    const { type, payload, ...rest } = decoded.value;
    this.deliver({ type, payload: isJsonObject(payload) ? payload : rest, ...(replyTo !== undefined && { replyTo }) });
  }

  private onSnapshot(actor: AnyActorRef, snapshot: AnyMachineSnapshot): void {
    if (actor !== this.actor || snapshot.status === "error") return;
    try {
      this.afterTransition(actor, snapshot);
    } catch (err) {
      // e.g. publishing on a connection that is closing: the machine itself is fine.
      this.env.logger.warn({ kind: this.kind, key: this.key, err: (err as Error).message }, "after-transition work failed");
    }
  }

  private afterTransition(actor: AnyActorRef, snapshot: AnyMachineSnapshot): void {
    if (!sameValue(snapshot.value, this.stateValue)) {
      const from = this.stateValue;
      this.stateValue = snapshot.value;
      this.since = Date.now();
      this.env.nc.publish(
        this.env.subjects.transitions(this.kind, this.key),
        encodeJson({ kind: this.kind, key: this.key, node: this.env.nodeId, from, to: snapshot.value, event: this.lastEvent, at: new Date(this.since).toISOString() }),
      );
    }
    const hasDeadlines = readDeadlines(snapshot.context);
    if (this.timers !== null || Object.keys(hasDeadlines).length > 0) {
      (this.timers ??= new DeadlineTimers((event, at) => this.deliver({ type: event, payload: { at } }))).sync(snapshot.context);
    }
    if (this.env.store !== null) this.persist(actor.getPersistedSnapshot());
  }

  private remember(id: string): void {
    const seen = (this.seen ??= []);
    seen.push(id);
    if (seen.length > SEEN_IDS) seen.splice(0, seen.length - SEEN_IDS);
    // Even when the machine's state does not change, the id must be saved with it.
    if (this.env.store !== null && this.settled !== undefined) this.persist(this.settled);
  }

  private persist(snapshot: unknown): void {
    this.settled = snapshot;
    this.pendingSave = snapshot;
    if (this.writing) return; // the running loop picks the newest snapshot up
    const loop = this.writeLoop();
    this.saving = loop;
    void loop.finally(() => {
      if (this.saving === loop) this.saving = null;
    });
  }

  private async writeLoop(): Promise<void> {
    this.writing = true;
    try {
      await this.writePending();
    } finally {
      this.writing = false;
      // Messages that changed nothing since the last write are as durable as that write.
      this.settleAwaiting(this.status === "stopped" && this.pendingSave !== undefined ? "retry" : "done");
    }
  }

  private async writePending(): Promise<void> {
    let attempt = 0;
    while (this.pendingSave !== undefined && this.env.store !== null) {
      const snapshot = this.pendingSave;
      this.pendingSave = undefined;
      const seen = this.seen === null ? undefined : [...this.seen];
      const json = recordJson(snapshot, seen ?? null);
      if (json === this.savedJson) {
        this.settleAwaiting("done");
        continue;
      }
      // The messages handled so far are reflected in this snapshot.
      const covered = this.awaitingSave;
      this.awaitingSave = null;
      try {
        this.revision = await this.env.store.save(
          {
            v: SNAPSHOT_SCHEMA_VERSION,
            kind: this.kind,
            key: this.key,
            snapshot,
            savedAt: new Date().toISOString(),
            node: this.env.nodeId,
            owner: this.env.incarnation,
            ...(seen && { seen }),
          },
          this.revision,
        );
        this.savedJson = json;
        attempt = 0;
        for (const settle of covered ?? []) settle("done");
      } catch (err) {
        // A write that timed out may have landed, and a retry with the old revision would then look
        // like someone else's write. Whoever wrote last tells: if it was this process, go on from there.
        const current = await this.env.store.load(this.kind, this.key).catch(() => undefined);
        if (current !== undefined && current !== null && current.record.owner === this.env.incarnation) {
          this.revision = current.revision;
          if (recordJson(current.record.snapshot, current.record.seen ?? null) === json) {
            this.savedJson = json;
            for (const settle of covered ?? []) settle("done");
            continue;
          }
        } else if (err instanceof SnapshotConflict) {
          for (const settle of [...(covered ?? []), ...(this.awaitingSave ?? [])]) settle("retry");
          this.awaitingSave = null;
          this.env.onFenced(this, err);
          return;
        }
        if (covered !== null) this.awaitingSave = [...covered, ...(this.awaitingSave ?? [])];
        // NATS unreachable or JetStream unavailable: keep the newest snapshot and try again.
        attempt += 1;
        this.pendingSave ??= snapshot;
        this.env.logger.warn({ kind: this.kind, key: this.key, err: (err as Error).message, attempt }, "snapshot write failed, retrying");
        await new Promise((resolve) => setTimeout(resolve, backoffDelay(DEFAULT_BACKOFF, attempt)));
        if (this.status === "stopped" && attempt > 5) return;
      }
    }
  }

  private settleAwaiting(outcome: "done" | "retry"): void {
    const waiting = this.awaitingSave;
    this.awaitingSave = null;
    for (const settle of waiting ?? []) settle(outcome);
  }

  private crash(error: Error): void {
    if (this.status === "stopped") return;
    this.status = "crashed";
    this.lastError = { message: error.message, at: Date.now() };
    this.timers?.clear();
    this.timers = null;
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
    for (const { message, settle } of pending ?? []) this.deliver(message, settle);
  }

  private refuse(message: ActorMessage, reason: string): void {
    if (message.replyTo !== undefined) {
      this.env.ports.reply(message.replyTo, failure(reason));
      return;
    }
    this.env.onRejected(this, reason, encodeJson({ type: message.type, payload: message.payload }));
  }
}

function recordJson(snapshot: unknown, seen: string[] | null): string {
  return JSON.stringify([snapshot, seen]);
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  return JSON.stringify(a) === JSON.stringify(b);
}
