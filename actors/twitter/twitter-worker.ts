// The Twitter bridge's actor: one `twitter` worker per remote Twitter identity (keyed by remote_id),
// started by `add_worker` or by its first `sync`/`deliver`, restarted by `reload_worker`, removed by
// `remove_worker`. Two regions run side by side:
//  - sync: what an operator sees
//      idle             nothing running;
//      syncing          a DM sync (dm-sync.ts) with its progress in the context; a `sync` arriving
//                       meanwhile is coalesced into one more run;
//      rateLimited      the X API said 429: waits for its reset time (the `ratelimit.reset` deadline,
//                       also `rate_limited_until`), then syncs; the identities worker was asked to poll
//                       half as often (`update_interval`), and is told the previous interval again
//                       after the next sync that succeeds;
//      needsCredentials the X API refused the credentials (or there are none): polls are ignored until
//                       `reload_worker` restarts the worker with the identity's new credentials;
//    other failures (network, 5xx) are recorded (`last_error`, also on the identity) and the next poll
//    tries again.
//  - delivery: `deliver` requests (dm-deliver.ts), one at a time, each answered on its reply inbox.

import { assertEvent, assign, enqueueActions, fromCallback, fromPromise, setup } from "xstate";
import { ACTOR_KINDS } from "../../contract/actor-kinds.ts";
import { handledOrders } from "../../contract/contract-table.ts";
import { type ActorFamily, type ActorInput, type ActorMessage, type ActorPorts, RELOADED_EVENT } from "../../runtime/actor-family.ts";
import { clearDeadline, setDeadline } from "../../runtime/deadlines.ts";
import { deliveryRegion, hasDeliveries, moreDeliveries, withDelivery } from "../bridges/delivery-queue.ts";
import { askPollInterval, restorePollInterval, slowerInterval } from "../bridges/poll-slowdown.ts";
import { notifyingSend } from "../notifications/sent-notification.ts";
import { defaultPollInterval } from "../store/identities.ts";
import type { Store } from "../store/store.ts";
import { type DmDeliverResult, deliverDm } from "./dm-deliver.ts";
import { syncDms } from "./dm-sync.ts";
import { DEFAULT_TWITTER_OPTIONS, type TwitterWorkerOptions } from "./twitter-worker-settings.ts";
import {
  RATE_LIMIT_RESET,
  type SyncFailureKind,
  syncFailure,
  type TwitterWorkerContext,
  type TwitterWorkerEvent,
  withFinishedRun,
  withSkippedEvents,
} from "./twitter-worker-state.ts";

export const TWITTER_KIND = ACTOR_KINDS.twitter;

export function twitterWorkerFamily(store: Store, options: Partial<TwitterWorkerOptions> = {}, now: () => number = Date.now): ActorFamily {
  const settings = { ...DEFAULT_TWITTER_OPTIONS, ...options };
  return {
    kind: TWITTER_KIND,
    description: "syncs the direct messages of one X (Twitter) account and sends its drafts as DMs",
    // A `sync` may overtake the `add_worker` sent with it: it starts the worker, which checks the identity.
    startsOnFirstMessage: true,
    // Its orders only: `sync.done`, `ratelimit.reset`, `credentials.refused`… come from the worker's own work.
    accepts: handledOrders({ twitter_dm: ["sync", "deliver"] }),
    createMachine: (ports) => twitterWorkerMachine(store, ports, settings, now),
  };
}

function twitterWorkerMachine(store: Store, ports: ActorPorts, settings: TwitterWorkerOptions, now: () => number) {
  const iso = () => new Date(now()).toISOString();
  const saveInfos = (context: TwitterWorkerContext, infos: Record<string, unknown>) =>
    void store.identities
      .updateInfos(context.user_id, context.identity_id, infos)
      .catch((err: Error) =>
        ports.logger.warn({ kind: TWITTER_KIND, key: context.identity_id, err: err.message }, "could not record the sync state on the identity"),
      );

  const runSync = fromCallback<ActorMessage, { context: TwitterWorkerContext }>(({ sendBack, input }) => {
    const tell = (event: TwitterWorkerEvent) => sendBack(event);
    const { context } = input;
    let cancelled = false;
    const abort = new AbortController();
    const deps = {
      store,
      request: (subject: string, payload: unknown, timeoutMs: number) => ports.request(subject, payload, timeoutMs),
      x: settings.x,
      pageSize: settings.pageSize,
      maxPages: settings.maxPages,
      maxImportAttempts: settings.maxImportAttempts,
      now,
    };
    syncDms(
      deps,
      { user_id: context.user_id, identity_id: context.identity_id, last_seen_id: context.last_seen_id, account: context.account, retry: context.retry },
      (progress) => {
        if (!cancelled) tell({ type: "sync.progress", payload: progress });
      },
      abort.signal,
    )
      .then((outcome) => {
        if (!cancelled) tell({ type: "sync.done", payload: outcome });
      })
      .catch((err: unknown) => {
        if (cancelled) return;
        tell({ type: "sync.failed", payload: syncFailure(err, context.retry) });
      });
    return () => {
      cancelled = true;
      abort.abort();
    };
  });

  const deliverOne = fromPromise<DmDeliverResult, { context: TwitterWorkerContext; message_id: string }>(async ({ input }) => {
    const logger = ports.logger.child({ kind: TWITTER_KIND, key: input.context.identity_id });
    const order = { message_id: input.message_id, remote_id: input.context.identity_id, user_id: input.context.user_id };
    const send = () => deliverDm({ store, x: settings.x, logger }, order, input.context.account);
    const sink = settings.notifications;
    return sink === undefined ? send() : notifyingSend({ store, sink, logger }, order, send, (result) => result.reply);
  });

  return setup({
    types: { context: {} as TwitterWorkerContext, events: {} as TwitterWorkerEvent, input: {} as ActorInput },
    actors: { runSync, deliverOne },
    guards: {
      failedWith: ({ event }, kind: SyncFailureKind) => {
        assertEvent(event, "sync.failed");
        return event.payload.kind === kind;
      },
      moreRequested: ({ context }) => context.requested,
      moreDeliveries: ({ context }) => moreDeliveries(context),
      hasDeliveries: ({ context }) => hasDeliveries(context),
    },
    actions: {
      startRun: assign(({ context }) => ({
        requested: false,
        progress: { total: 0, done: 0, skipped: 0, started_at: iso() },
        deadlines: clearDeadline(context.deadlines, RATE_LIMIT_RESET),
        rate_limited_until: null,
      })),
      coalesce: assign({ requested: true }),
      progress: assign(({ context, event }) => {
        assertEvent(event, "sync.progress");
        const progress = event.payload;
        return {
          last_seen_id: progress.last_seen_id,
          account: progress.account,
          progress: context.progress === null ? null : { ...context.progress, total: progress.total, done: progress.done, skipped: progress.skipped },
        };
      }),
      recordSuccess: enqueueActions(({ context, event, enqueue }) => {
        assertEvent(event, "sync.done");
        const outcome = event.payload;
        enqueue(() => restorePollInterval(ports, "twitter", context));
        const at = iso();
        const warnings = [
          outcome.stopped,
          outcome.gap ? `more than ${settings.maxPages} pages of new DMs: older ones between the last seen id and those read may be missing` : null,
        ].filter((warning): warning is string => warning !== null);
        const lastError = warnings.length > 0 ? { message: warnings.join("; "), at } : null;
        const finished = { total: outcome.total, done: outcome.done, skipped: outcome.skipped, started_at: context.progress?.started_at ?? at };
        for (const skipped of outcome.skipped_events)
          enqueue(() =>
            ports.logger.warn({ kind: TWITTER_KIND, key: context.identity_id, event_id: skipped.event_id, reason: skipped.reason }, "DM event skipped"),
          );
        enqueue(() => saveInfos(context, { last_sync: at, last_error: lastError }));
        enqueue.assign({
          last_seen_id: outcome.last_seen_id,
          account: outcome.account,
          retry: outcome.retry,
          skipped: withSkippedEvents(context, outcome.skipped_events),
          progress: finished,
          history: withFinishedRun(context, finished, at, outcome.stopped === null ? "done" : "stopped"),
          last_sync: at,
          last_error: lastError,
          slowed_from: null,
          rate_limited_until: null,
        });
      }),
      recordFailure: enqueueActions(({ context, event, enqueue }) => {
        assertEvent(event, "sync.failed");
        const failed = event.payload;
        const at = iso();
        const progress = failed.progress;
        const finished =
          context.progress === null
            ? null
            : { ...context.progress, ...(progress !== null && { total: progress.total, done: progress.done, skipped: progress.skipped }) };
        const lastError = { message: failed.kind === "credentials" ? `${failed.message}; waiting for new credentials (reload_worker)` : failed.message, at };
        enqueue(() => saveInfos(context, { last_error: lastError }));
        enqueue.assign({
          ...(progress !== null && { last_seen_id: progress.last_seen_id, account: progress.account }),
          retry: failed.retry,
          progress: finished,
          history: finished === null ? context.history : withFinishedRun(context, finished, at, failed.kind),
          last_error: lastError,
        });
      }),
      waitForReset: enqueueActions(({ context, event, enqueue }) => {
        assertEvent(event, "sync.failed");
        const failed = event.payload;
        const resetAt = Date.parse(failed.reset_at ?? "") || now() + 15 * 60_000;
        // Each rate limit doubles the identity's current interval; the first one's is what comes back.
        const slower = slowerInterval(failed.poll_interval, "twitter");
        if (slower !== failed.poll_interval) enqueue(() => askPollInterval(ports, "twitter", context, slower));
        enqueue.assign({
          rate_limited_until: new Date(resetAt).toISOString(),
          slowed_from: context.slowed_from ?? failed.poll_interval ?? defaultPollInterval("twitter"),
          deadlines: setDeadline(context.deadlines, RATE_LIMIT_RESET, resetAt + settings.resetMarginMs),
        });
      }),
      forgetAccount: assign({ account: null }),
      credentialsRefused: enqueueActions(({ context, event, enqueue }) => {
        assertEvent(event, "credentials.refused");
        const message = `${event.payload.message}; waiting for new credentials (reload_worker)`;
        const lastError = { message, at: iso() };
        enqueue(() => saveInfos(context, { last_error: lastError }));
        enqueue.assign({ last_error: lastError });
      }),
      enqueueDelivery: assign({
        deliveries: ({ context, event }) => {
          assertEvent(event, "deliver");
          return withDelivery(context, event);
        },
      }),
      answerDelivery: enqueueActions(({ context, enqueue }, { output: result }: { output: DmDeliverResult }) => {
        const [done, ...rest] = context.deliveries;
        enqueue(() => ports.reply(done?.replyTo, result.reply));
        enqueue.assign({ deliveries: rest, ...(result.account !== null && context.account === null && { account: result.account }) });
        if (result.invalid_credentials) enqueue.raise({ type: "credentials.refused", payload: { message: result.reply.message } });
      }),
    },
  }).createMachine({
    id: TWITTER_KIND,
    context: ({ input }) => ({
      identity_id: String(input.remote_id ?? input.key),
      user_id: String(input.user_id ?? ""),
      last_seen_id: null,
      account: null,
      progress: null,
      history: [],
      requested: false,
      last_sync: null,
      last_error: null,
      rate_limited_until: null,
      slowed_from: null,
      retry: null,
      skipped: [],
      deliveries: [],
      deadlines: {},
    }),
    initial: "working",
    states: {
      working: {
        type: "parallel",
        states: {
          sync: {
            initial: "idle",
            states: {
              idle: {
                on: {
                  sync: { target: "syncing", actions: "startRun" },
                  // Restarted with fresh configuration and credentials: check them at once.
                  [RELOADED_EVENT]: { target: "syncing", actions: ["forgetAccount", "startRun"] },
                  "credentials.refused": { target: "needsCredentials", actions: "credentialsRefused" },
                },
              },
              syncing: {
                tags: ["busy"],
                invoke: { src: "runSync", input: ({ context }) => ({ context }) },
                on: {
                  sync: { actions: "coalesce" },
                  [RELOADED_EVENT]: { actions: ["forgetAccount", "coalesce"] },
                  "sync.progress": { actions: "progress" },
                  "sync.done": [
                    { guard: "moreRequested", target: "syncing", reenter: true, actions: ["recordSuccess", "startRun"] },
                    { target: "idle", actions: "recordSuccess" },
                  ],
                  "sync.failed": [
                    { guard: { type: "failedWith", params: "gone" }, target: "#twitter.gone" },
                    { guard: { type: "failedWith", params: "rate_limited" }, target: "rateLimited", actions: ["recordFailure", "waitForReset"] },
                    { guard: { type: "failedWith", params: "credentials" }, target: "needsCredentials", actions: "recordFailure" },
                    { target: "idle", actions: "recordFailure" },
                  ],
                },
              },
              rateLimited: {
                on: {
                  // The sync owed since the limit runs at the reset anyway.
                  sync: {},
                  [RATE_LIMIT_RESET]: { target: "syncing", actions: "startRun" },
                  "credentials.refused": {
                    target: "needsCredentials",
                    actions: [
                      "credentialsRefused",
                      assign(({ context }) => ({ deadlines: clearDeadline(context.deadlines, RATE_LIMIT_RESET), rate_limited_until: null })),
                    ],
                  },
                },
              },
              needsCredentials: {
                on: {
                  // Polls keep coming; they wait for new credentials like the rest.
                  sync: {},
                  [RELOADED_EVENT]: { target: "syncing", actions: ["forgetAccount", "startRun"] },
                },
              },
            },
          },
          delivery: deliveryRegion<TwitterWorkerContext, DmDeliverResult>(),
        },
      },
      // The identity was deleted: the worker has nothing left to do and is removed.
      gone: { type: "final" },
    },
  });
}
