// The inbound processor of one user, as an actor (kind `inbound`, keyed by user_id): every
// `process_inbound` for the user, on inboundSMTP (mail: SMTP, IMAP) and on inboundTwitter (DMs), comes
// here, waits in a bounded queue and is imported a few at a time by the processors' own logic
// (inbound-email.ts, inbound-twitter.ts), which the actor lends what it remembers of the user
// (inbound-cache.ts: the user, their identities, contacts and Message-IDs seen lately, each re-read
// after its time to live; in the node's memory, not in the snapshot). Each request is answered
// with the processors' reply, unchanged. States, for operators:
//   idle        nothing to import;
//   importing   a batch running; the context shows the queue, and the busy period's progress (done,
//               failed, rate);
//   backingOff  the store (NATS, JetStream) failed under an import: the error and the next try
//               (`retry.due`) are in the context, the orders it failed stay first in the queue and are
//               imported again then (an order still failing after `maxAttempts` tries is answered with
//               the error, so that it cannot hold the queue for ever). Failures that are not the store's
//               (a raw that is not mail) are answered at once, as errors.
// This build's IMAP bridge sends a sync's mails in batches (`import_batch`, inbound-batch.ts): a batch is
// one order of the queue, its raws imported side by side (16 at a time), each as one `process_inbound`
// would be, and answered once with their replies in the order asked (one transition, one snapshot write).
// A store failure under any of its raws puts the whole batch back in the queue: its raws imported by
// then answer "already imported" next time.
// The queue (ids and reply inboxes, never mail) is in the snapshot, so a node that stops or dies leaves
// it to the next owner, which imports it again (imports are idempotent).

import { LRUCache } from "lru-cache";
import { assertEvent, assign, fromCallback, setup } from "xstate";
import { ACTOR_KINDS } from "../../contract/actor-kinds.ts";
import { type OrderFields, orderSpec } from "../../contract/contract-table.ts";
import type { ActorFamily, ActorInput, ActorMessage, ActorPorts, DeadlineMessage, TypedMessage } from "../../runtime/actor-family.ts";
import { type BackoffPolicy, backoffDelay } from "../../runtime/backoff.ts";
import { clearDeadline, type Deadlines, setDeadline } from "../../runtime/deadlines.ts";
import { BUSY } from "../../runtime/orders.ts";
import type { PayloadSchema } from "../../runtime/payload-schema.ts";
import { failure } from "../../runtime/reply.ts";
import type { InboundEmailOptions } from "../mail/inbound-email.ts";
import { DEFAULT_INBOUND_CACHE_LIMITS, InboundCache, type InboundCacheLimits } from "../messages/inbound-cache.ts";
import type { Store } from "../store/store.ts";
import { batchRawIds, IMPORT_BATCH_EMAIL, type ImportBatchWire, importBatchPayload, MAX_BATCH_RAWS } from "./inbound-batch.ts";
import { ANSWERED, type ImportDeps, type ImportOutcome, importPending, type PendingImport, type Processor, STORE_FAILED } from "./pending-import.ts";

export const INBOUND_KIND = ACTOR_KINDS.inbound;
/** The message types the actor takes: `process_inbound`, told apart by the subject it came on. */
export const PROCESS_EMAIL = "process_inbound.email";
export const PROCESS_TWITTER = "process_inbound.twitter";
const RETRY_DUE = "retry.due";

/** `process_inbound` on either subject, an import batch, what the batch's imports report, the retry deadline. */
type InboundEvent =
  | TypedMessage<typeof PROCESS_EMAIL, OrderFields<"inboundSMTP", "process_inbound">>
  | TypedMessage<typeof PROCESS_TWITTER, OrderFields<"inboundTwitter", "process_inbound">>
  | TypedMessage<typeof IMPORT_BATCH_EMAIL, ImportBatchWire>
  | ImportOutcome
  | DeadlineMessage<typeof RETRY_DUE>;

export interface InboundProcessorOptions {
  /** Raws waiting or running at most (an order names one, a batch up to 32); past it a request is answered with an error at once. */
  maxQueue: number;
  /** Orders imported side by side (an import batch counts as one: its raws run a bounded number at a time, pending-import.ts). */
  concurrency: number;
  /** Pause before trying again after the store failed. */
  retry: BackoffPolicy;
  /**
   * Tries of one order that may fail on the store; the last failure is answered as an error, so that an
   * order the store keeps refusing cannot hold the queue for ever (its requester tries it again later).
   */
  maxAttempts: number;
  cache: InboundCacheLimits;
  /** Mail processing's own options (addresses per header). */
  mail: Pick<InboundEmailOptions, "maxAddressesPerHeader">;
  /** Told of each message stored for the first time (the user's notifications); never of one imported before. */
  onImported?: ImportDeps["onImported"];
}

export const DEFAULT_INBOUND_OPTIONS: InboundProcessorOptions = {
  maxQueue: 256,
  concurrency: 8,
  retry: { initialMs: 1_000, maxMs: 60_000, factor: 2, jitter: 0.2 },
  maxAttempts: 10,
  cache: DEFAULT_INBOUND_CACHE_LIMITS,
  mail: {},
};

/** The current busy period (from leaving `idle` to coming back), or the last one. */
export interface ImportProgress {
  started_at: string;
  /** Raws answered: imported, already imported, or refused. */
  done: number;
  /** Of those, answered with an error. */
  failed: number;
  /** Answers per second over the period. */
  rate_per_s: number;
  finished_at: string | null;
}

export interface InboundContext {
  user_id: string;
  /** Orders waiting, oldest first. */
  queue: PendingImport[];
  /** The batch being imported. */
  running: PendingImport[];
  next_seq: number;
  progress: ImportProgress | null;
  /** The store's failure that the running batch met (it is then tried again after a pause). */
  batch_store_error: string | null;
  /** Batches in a row that met a store failure. */
  store_failures: number;
  last_error: { message: string; at: string } | null;
  deadlines: Deadlines;
}

interface BatchInput {
  user_id: string;
  batch: PendingImport[];
}

/** Busy users whose caches a node keeps at most (an actor that moved away leaves its cache behind). */
const MAX_CACHED_USERS = 1_024;

/** The contract's `process_inbound` payload, the same on inboundSMTP and inboundTwitter. */
function processInboundPayload(): PayloadSchema {
  const email = orderSpec("inboundSMTP", "process_inbound")?.payload;
  const twitter = orderSpec("inboundTwitter", "process_inbound")?.payload;
  const same =
    email !== undefined &&
    twitter !== undefined &&
    Object.keys(email).length === Object.keys(twitter).length &&
    Object.entries(email).every(([field, spec]) => twitter[field] === spec);
  if (!same) throw new Error("the contract's process_inbound payloads differ between inboundSMTP and inboundTwitter");
  return email;
}

export function inboundProcessorFamily(store: Store, options: Partial<InboundProcessorOptions> = {}, now: () => number = Date.now): ActorFamily {
  const settings = { ...DEFAULT_INBOUND_OPTIONS, ...options };
  return {
    kind: INBOUND_KIND,
    description: "imports one user's received mail and DMs (process_inbound), a few at a time",
    // The first import of a user starts it; the router admits only users that exist.
    startsOnFirstMessage: true,
    accepts: { [PROCESS_EMAIL]: processInboundPayload(), [PROCESS_TWITTER]: processInboundPayload(), [IMPORT_BATCH_EMAIL]: importBatchPayload() },
    createMachine: (ports) => inboundMachine(store, ports, settings, now),
  };
}

function inboundMachine(store: Store, ports: ActorPorts, settings: InboundProcessorOptions, now: () => number) {
  // Per user, the least recently busy dropped first: memory of this node, never saved (rebuilt in a
  // few reads elsewhere). Kept between busy periods: what it holds is re-read after its time to live.
  const caches = new LRUCache<string, InboundCache>({ max: MAX_CACHED_USERS });
  const cacheOf = (userId: string) => {
    let cache = caches.get(userId);
    if (cache === undefined) {
      cache = new InboundCache(settings.cache, now);
      caches.set(userId, cache);
    }
    return cache;
  };

  const importBatch = fromCallback<ActorMessage, BatchInput>(({ sendBack, input }) => {
    const cache = cacheOf(input.user_id);
    let stopped = false;
    const report = (outcome: ImportOutcome) => {
      if (!stopped) sendBack(outcome);
    };
    for (const pending of input.batch) {
      void importPending({ store, mail: settings.mail, cache, userId: input.user_id, onImported: settings.onImported }, pending).then(report);
    }

    return () => {
      stopped = true;
    };
  });

  const nowIso = () => new Date(now()).toISOString();
  const raws = (pending: PendingImport) => pending.raw_ids?.length ?? 1;
  const queued = (context: InboundContext) => [...context.queue, ...context.running].reduce((sum, pending) => sum + raws(pending), 0);
  const batchIds = (event: InboundEvent) => {
    assertEvent(event, IMPORT_BATCH_EMAIL);
    return batchRawIds(event.payload);
  };
  /** An order from the bus: its user, its identity. */
  const orderOf = (event: InboundEvent) => {
    assertEvent(event, [PROCESS_EMAIL, PROCESS_TWITTER, IMPORT_BATCH_EMAIL]);
    return event;
  };

  // An order from the bus: queued, or answered at once when the queue is full or it names another user.
  const take = [
    { guard: "forAnotherUser" as const, actions: "refuseAnotherUser" as const },
    { guard: "queueFull" as const, actions: "refuseFull" as const },
    { actions: "enqueue" as const },
  ];
  const fromIdle = [
    { guard: "forAnotherUser" as const, actions: "refuseAnotherUser" as const },
    { target: "importing" as const, actions: ["startPeriod" as const, "enqueue" as const] },
  ];
  // A batch: queued whole, or refused whole.
  const takeImportBatch = [
    { guard: "forAnotherUser" as const, actions: "refuseAnotherUser" as const },
    { guard: "badBatch" as const, actions: "refuseBadBatch" as const },
    { guard: "queueFullForBatch" as const, actions: "refuseFull" as const },
    { actions: "enqueueBatch" as const },
  ];
  const importBatchFromIdle = [
    { guard: "forAnotherUser" as const, actions: "refuseAnotherUser" as const },
    { guard: "badBatch" as const, actions: "refuseBadBatch" as const },
    { guard: "queueFullForBatch" as const, actions: "refuseFull" as const },
    { target: "importing" as const, actions: ["startPeriod" as const, "enqueueBatch" as const] },
  ];

  return setup({
    types: { context: {} as InboundContext, events: {} as InboundEvent, input: {} as ActorInput },
    actors: { importBatch },
    guards: {
      forAnotherUser: ({ context, event }) => orderOf(event).payload.user_id !== context.user_id,
      queueFull: ({ context }) => queued(context) >= settings.maxQueue,
      badBatch: ({ event }) => typeof batchIds(event) === "string",
      queueFullForBatch: ({ context, event }) => {
        const ids = batchIds(event);
        return typeof ids === "string" || queued(context) + ids.length > settings.maxQueue;
      },
      hasQueued: ({ context }) => context.queue.length > 0,
      batchFailedOnStore: ({ context }) => context.running.length === 0 && context.batch_store_error !== null,
      batchDoneMoreQueued: ({ context }) => context.running.length === 0 && context.queue.length > 0,
      batchDone: ({ context }) => context.running.length === 0,
      lastAttempt: ({ context, event }) => {
        assertEvent(event, STORE_FAILED);
        const { seq } = event.payload;
        return (context.running.find((pending) => pending.seq === seq)?.attempts ?? 0) + 1 >= settings.maxAttempts;
      },
    },
    actions: {
      refuseAnotherUser: ({ context, event }) => {
        const order = orderOf(event);
        ports.reply(order.replyTo, failure(`this is the inbound processor of user ${context.user_id}, not of user ${order.payload.user_id}`));
      },
      refuseBadBatch: ({ event }) => {
        const problem = batchIds(event);
        ports.reply(orderOf(event).replyTo, failure(typeof problem === "string" ? problem : "unusable import batch"));
      },
      // The answer of a node whose handlers are all busy: the message itself was not looked at, so its
      // sender asks again shortly (busy-retry.ts) or later (an MTA's 451), rather than taking it as refused.
      refuseFull: ({ event }) => ports.reply(orderOf(event).replyTo, failure(BUSY)),
      enqueue: assign(({ context, event }) => {
        assertEvent(event, [PROCESS_EMAIL, PROCESS_TWITTER]);
        const processor: Processor = event.type === PROCESS_TWITTER ? "twitter" : "email";
        return {
          queue: [
            ...context.queue,
            {
              seq: context.next_seq,
              processor,
              message_id: event.payload.message_id,
              remote_id: event.payload.remote_id,
              ...(event.replyTo !== undefined && { replyTo: event.replyTo }),
              attempts: 0,
            },
          ],
          next_seq: context.next_seq + 1,
        };
      }),
      enqueueBatch: assign(({ context, event }) => {
        const ids = batchIds(event);
        if (typeof ids === "string") return {};
        const order = orderOf(event);
        const batch: PendingImport = {
          seq: context.next_seq,
          processor: "email",
          message_id: ids[0] as string,
          raw_ids: ids,
          remote_id: order.payload.remote_id,
          ...(order.replyTo !== undefined && { replyTo: order.replyTo }),
          attempts: 0,
        };
        return { queue: [...context.queue, batch], next_seq: context.next_seq + 1 };
      }),
      startPeriod: assign(() => ({ progress: { started_at: nowIso(), done: 0, failed: 0, rate_per_s: 0, finished_at: null } })),
      // Up to `concurrency` orders and MAX_BATCH_RAWS raws (an import batch runs alone when it is that large).
      takeBatch: assign(({ context }) => {
        let taken = 0;
        let rawsTaken = 0;
        while (taken < context.queue.length && taken < settings.concurrency) {
          const next = raws(context.queue[taken] as PendingImport);
          if (taken > 0 && rawsTaken + next > MAX_BATCH_RAWS) break;
          taken += 1;
          rawsTaken += next;
        }
        return { running: context.queue.slice(0, taken), queue: context.queue.slice(taken), batch_store_error: null };
      }),
      answer: ({ context, event }) => {
        assertEvent(event, ANSWERED);
        const { seq, reply } = event.payload;
        ports.reply(context.running.find((pending) => pending.seq === seq)?.replyTo, reply);
      },
      recordAnswer: assign(({ context, event }) => {
        assertEvent(event, ANSWERED);
        const { seq, raws: answered, failed } = event.payload;
        const progress = context.progress ?? { started_at: nowIso(), done: 0, failed: 0, rate_per_s: 0, finished_at: null };
        const done = progress.done + answered;
        const seconds = Math.max(0.001, (now() - Date.parse(progress.started_at)) / 1000);
        return {
          running: context.running.filter((pending) => pending.seq !== seq),
          progress: { ...progress, done, failed: progress.failed + failed, rate_per_s: Math.round((done / seconds) * 100) / 100 },
          store_failures: 0,
        };
      }),
      // The order goes back to the head of the queue, to be imported again once the store answers.
      recordStoreFailure: assign(({ context, event }) => {
        assertEvent(event, STORE_FAILED);
        const { seq, error } = event.payload;
        const failed = context.running.find((pending) => pending.seq === seq);
        return {
          running: context.running.filter((pending) => pending.seq !== seq),
          queue: failed === undefined ? context.queue : [{ ...failed, attempts: failed.attempts + 1 }, ...context.queue],
          batch_store_error: error,
          last_error: { message: error, at: nowIso() },
        };
      }),
      answerGivenUp: ({ context, event }) => {
        assertEvent(event, STORE_FAILED);
        const { seq, error } = event.payload;
        ports.reply(context.running.find((pending) => pending.seq === seq)?.replyTo, failure(`${error} (tried ${settings.maxAttempts} times)`));
      },
      recordGivenUp: assign(({ context, event }) => {
        assertEvent(event, STORE_FAILED);
        const { seq, error } = event.payload;
        const progress = context.progress ?? { started_at: nowIso(), done: 0, failed: 0, rate_per_s: 0, finished_at: null };
        const given = context.running.find((pending) => pending.seq === seq);
        const count = given === undefined ? 1 : raws(given);
        return {
          running: context.running.filter((pending) => pending.seq !== seq),
          progress: { ...progress, done: progress.done + count, failed: progress.failed + count },
          batch_store_error: error,
          last_error: { message: error, at: nowIso() },
        };
      }),
      scheduleRetry: assign(({ context }) => {
        const failures = context.store_failures + 1;
        return { store_failures: failures, deadlines: setDeadline(context.deadlines, RETRY_DUE, now() + backoffDelay(settings.retry, failures)) };
      }),
      logBackingOff: ({ context }) =>
        ports.logger.warn(
          { kind: INBOUND_KIND, key: context.user_id, queued: context.queue.length, err: context.batch_store_error, retryAt: context.deadlines[RETRY_DUE] },
          "inbound imports wait for the store",
        ),
      clearRetry: assign(({ context }) => ({ deadlines: clearDeadline(context.deadlines, RETRY_DUE) })),
      endPeriod: assign(({ context }) => ({ progress: context.progress === null ? null : { ...context.progress, finished_at: nowIso() } })),
    },
  }).createMachine({
    id: INBOUND_KIND,
    context: ({ input }) => ({
      user_id: String(input.user_id ?? input.key),
      queue: [],
      running: [],
      next_seq: 1,
      progress: null,
      batch_store_error: null,
      store_failures: 0,
      last_error: null,
      deadlines: {},
    }),
    initial: "idle",
    states: {
      idle: {
        on: {
          [PROCESS_EMAIL]: fromIdle,
          [PROCESS_TWITTER]: fromIdle,
          [IMPORT_BATCH_EMAIL]: importBatchFromIdle,
        },
      },
      importing: {
        tags: ["busy"],
        entry: "takeBatch",
        invoke: { src: "importBatch", input: ({ context }) => ({ user_id: context.user_id, batch: context.running }) },
        on: {
          [PROCESS_EMAIL]: take,
          [PROCESS_TWITTER]: take,
          [IMPORT_BATCH_EMAIL]: takeImportBatch,
          [ANSWERED]: { actions: ["answer", "recordAnswer"] },
          [STORE_FAILED]: [{ guard: "lastAttempt", actions: ["answerGivenUp", "recordGivenUp"] }, { actions: "recordStoreFailure" }],
        },
        always: [
          { guard: "batchFailedOnStore", target: "backingOff", actions: ["scheduleRetry", "logBackingOff"] },
          { guard: "batchDoneMoreQueued", target: "importing", reenter: true },
          { guard: "batchDone", target: "idle", actions: "endPeriod" },
        ],
      },
      backingOff: {
        on: {
          [PROCESS_EMAIL]: take,
          [PROCESS_TWITTER]: take,
          [IMPORT_BATCH_EMAIL]: takeImportBatch,
          [RETRY_DUE]: [
            { guard: "hasQueued", target: "importing", actions: "clearRetry" },
            { target: "idle", actions: ["clearRetry", "endPeriod"] },
          ],
        },
      },
    },
  });
}
