// The IMAP bridge's actor: one `imap` worker per remote mail identity (keyed by remote_id). Three
// regions run side by side:
//  - sync: idle → syncing (connecting, fetching with progress) → idle. A `sync` walks every folder the
//    identity follows (account-folders.ts), each with its own cursor; new mail the watch heard of syncs
//    INBOX alone. A failed sync backs off (next retry and last error in the context), asks the identities
//    worker to poll less often after a few failures, and disables the identity after 72 h of consecutive
//    failures. An OAuth 2.0 account whose refresh token the provider refused waits in needsCredentials
//    (polls ignored, polling slowed at once) until its identity gets new credentials and the worker is
//    reloaded. Orders arriving during a sync are coalesced into one more run, never queued twice.
//  - delivery: `deliver` requests, one at a time: the SMTP bridge sends through the account's own server,
//    then the sent copy is APPENDed to the account's Sent mailbox.
//  - push: the account's IMAP connection kept open on INBOX, so new mail is synced within seconds
//    (polling stays the fallback).
// The watch and the syncs share one connection per account (account-connection.ts), a resource of the
// worker's invoked actors, never in its context; every new connection of the node waits for its turn
// (connect-pacer.ts), so that a node resuming hundreds of workers does not open them all at once.

import { assertEvent, assign, enqueueActions, fromCallback, fromPromise, setup } from "xstate";
import { ACTOR_KINDS } from "../../contract/actor-kinds.ts";
import { handledOrders } from "../../contract/contract-table.ts";
import { publishOrder } from "../../contract/emit-order.ts";
import { type ActorFamily, type ActorInput, type ActorMessage, type ActorPorts, RELOADED_EVENT } from "../../runtime/actor-family.ts";
import { backoffDelay } from "../../runtime/backoff.ts";
import { clearDeadline, setDeadline } from "../../runtime/deadlines.ts";
import type { Reply } from "../../runtime/reply.ts";
import { deliveryRegion, hasDeliveries, moreDeliveries, withDelivery } from "../bridges/delivery-queue.ts";
import { askPollInterval, restorePollInterval, slowerInterval } from "../bridges/poll-slowdown.ts";
import { MailLogins } from "../mail/mail-login.ts";
import type { Store } from "../store/store.ts";
import { AccountConnection } from "./account-connection.ts";
import { hasChanges, INBOX, withFolder } from "./account-folders.ts";
import { ConnectPacer } from "./connect-pacer.ts";
import { imapAccount } from "./imap-account.ts";
import { DEFAULT_IMAP_OPTIONS, type ImapWorkerOptions } from "./imap-worker-settings.ts";
import { HISTORY, type ImapWorkerContext, type ImapWorkerEvent, RETRY_DUE, skippedNote, upgradeImapContext, withFailedRun } from "./imap-worker-state.ts";
import { MAX_PENDING_CHANGES, type PendingChange, withoutApplied, withPendingChange } from "./pending-changes.ts";
import { deliverWithSentCopy } from "./sent-delivery.ts";
import { type SyncMode, syncRun, widestRun } from "./sync-run.ts";

export const IMAP_KIND = ACTOR_KINDS.imap;

export function imapWorkerFamily(store: Store, options: Partial<ImapWorkerOptions> = {}, now: () => number = Date.now): ActorFamily {
  const settings = { ...DEFAULT_IMAP_OPTIONS, ...options };
  return {
    kind: IMAP_KIND,
    description: "syncs one remote mail account over IMAP and files its sent mail",
    // A `sync` may overtake the `add_worker` sent with it: it starts the worker, which checks the identity.
    startsOnFirstMessage: true,
    // Its orders only: `sync.done`, `retry.due`, `mail.arrived`… come from the worker's own work.
    accepts: handledOrders({ IMAPfetcher: ["sync", "fullfetch", "store_flags", "move_to_trash"], outboundIMAP: ["deliver"] }),
    createMachine: (ports) => imapWorkerMachine(store, ports, settings, new ConnectPacer(settings.connectsPerSecond), now),
    upgradeContext: upgradeImapContext,
  };
}

type AccountIds = { user_id: string; identity_id: string };

function imapWorkerMachine(store: Store, ports: ActorPorts, settings: ImapWorkerOptions, pacer: ConnectPacer, now: () => number) {
  const logins = new MailLogins(store, settings.accessTokens);
  const account = (ids: AccountIds) => imapAccount(store, logins, ids.user_id, ids.identity_id, { destinations: settings.destinations });

  // The machine is shared by every worker of the node; the actor system is each worker's own (one
  // createActor per worker, a new one when a worker is reloaded or comes back from passivation), so it
  // names the worker whose connection this is. No invoked actor holds it for the worker's whole life
  // (that would keep an idle polled worker from being passivated): a sync stopped halfway closes it,
  // and once neither the watch nor a sync uses it, it is logged out after its keep time.
  const connections = new WeakMap<object, AccountConnection>();
  const connectionOf = (ids: AccountIds, system: object): AccountConnection => {
    let connection = connections.get(system);
    if (connection === undefined) {
      const imap = account(ids);
      connection = new AccountConnection({
        open: async (signal, onTurn) => {
          await pacer.turn(signal);
          onTurn();
          const identity = await imap.identity();
          if (identity === null) throw Object.assign(new Error(`identity ${ids.identity_id} no longer exists`), { gone: true });
          // Quiet for 200 ms: straight into IDLE (imapflow waits 15 s by default). From its turn on,
          // connecting and logging in get CALIOPEN_IMAP_TIMEOUT_MS, however slowly the server's bytes come.
          return imap.connect(identity, { autoIdleDelayMs: 200, socketTimeoutMs: settings.timeoutMs, loginTimeoutMs: settings.timeoutMs, signal });
        },
        keepUnwatchedMs: settings.keepUnwatchedMs,
        logoutWithinMs: settings.timeoutMs,
      });
      connections.set(system, connection);
    }
    return connection;
  };

  const deliverOne = fromPromise<Reply, { context: ImapWorkerContext; message_id: string }>(({ input }) =>
    deliverWithSentCopy(store, ports, account(input.context), {
      identity_id: input.context.identity_id,
      user_id: input.context.user_id,
      message_id: input.message_id,
    }),
  );

  const watch = fromCallback<ActorMessage, AccountIds & { mailbox: string }>(({ sendBack, input, system }) => {
    const connection = connectionOf(input, system);
    connection.watch({
      mailbox: input.mailbox,
      onNewMail: () => sendBack({ type: "mail.arrived", payload: {} } satisfies ImapWorkerEvent),
      onTrouble: (error, retryInMs) =>
        ports.logger.info({ kind: IMAP_KIND, key: input.identity_id, err: error.message, retryInMs }, "new-mail watch interrupted"),
    });
    return () => connection.unwatch();
  });

  const untilReloaded = {
    sync: {},
    fullfetch: {},
    "mail.arrived": {},
    store_flags: { actions: "queueChange" },
    move_to_trash: { actions: "queueChange" },
    [RELOADED_EVENT]: { target: "syncing", actions: ["forgetFailures", { type: "startRun", params: "sync" }] },
  } as const;

  return setup({
    types: { context: {} as ImapWorkerContext, events: {} as ImapWorkerEvent, input: {} as ActorInput },
    actors: {
      runSync: syncRun(store, account, connectionOf, settings.concurrency, settings, now, settings.importBatch),
      deliverOne,
      watch,
    },
    guards: {
      gone: ({ event }) => {
        assertEvent(event, "sync.failed");
        return event.payload.gone;
      },
      needsCredentials: ({ event }) => {
        assertEvent(event, "sync.failed");
        return event.payload.needs_credentials;
      },
      giveUp: ({ context }) => context.first_failure_at !== null && now() - Date.parse(context.first_failure_at) >= settings.disableAfterMs,
      moreRequested: ({ context }) => context.requested !== null,
      moreDeliveries: ({ context }) => moreDeliveries(context),
      hasDeliveries: ({ context }) => hasDeliveries(context),
    },
    actions: {
      // A fullfetch asked for meanwhile covers a sync too, a sync an INBOX sync, and each the changes made here.
      coalesce: assign(({ context }, mode: SyncMode) => ({
        requested: widestRun(context.requested, mode),
      })),
      // Changes made here wait in the context (they survive a restart) until a run carries them.
      queueChange: enqueueActions(({ context, event, enqueue }) => {
        assertEvent(event, ["store_flags", "move_to_trash"]);
        const change: PendingChange = { order: event.type, message_id: event.payload.message_id, since: new Date(now()).toISOString() };
        const queued = withPendingChange(context.pending_changes, change);
        if (queued.length > MAX_PENDING_CHANGES) {
          const reason = `${MAX_PENDING_CHANGES} changes already wait for the account's server`;
          enqueue(() => ports.deadLetter("IMAPfetcher", reason, event.payload));
          return;
        }
        enqueue.assign({ pending_changes: queued });
      }),
      startRun: assign((_, mode: SyncMode) => ({
        mode,
        requested: null,
        progress: { mode, total: 0, done: 0, failed: 0, skipped: 0, started_at: new Date(now()).toISOString() },
      })),
      recordFailure: enqueueActions(({ context, event, enqueue }) => {
        assertEvent(event, "sync.failed");
        const failed = event.payload;
        const at = new Date(now()).toISOString();
        const failures = context.failures + 1;
        let slowedFrom = context.slowed_from;
        if (failures === settings.slowDownAfterFailures && slowedFrom === null && failed.poll_interval !== null) {
          const slower = slowerInterval(failed.poll_interval, "imap");
          enqueue(() => askPollInterval(ports, "imap", context, slower));
          slowedFrom = failed.poll_interval;
        }
        enqueue.assign({
          failures,
          first_failure_at: context.first_failure_at ?? at,
          last_error: { message: failed.message, at },
          history: withFailedRun(context, failed.message, at),
          slowed_from: slowedFrom,
          deadlines: setDeadline(context.deadlines, RETRY_DUE, now() + backoffDelay(settings.retry, failures)),
        });
      }),
      // No retry: only new credentials can help. Polls meanwhile are wasted, so they slow down at once.
      awaitCredentials: enqueueActions(({ context, event, enqueue }) => {
        assertEvent(event, "sync.failed");
        const failed = event.payload;
        const at = new Date(now()).toISOString();
        const message = `${failed.message}; waiting for new credentials (update the identity's credentials)`;
        const slower = failed.poll_interval === null ? null : slowerInterval(failed.poll_interval, "imap");
        if (context.slowed_from === null && slower !== null && slower !== failed.poll_interval) enqueue(() => askPollInterval(ports, "imap", context, slower));
        enqueue.assign({
          failures: context.failures + 1,
          first_failure_at: context.first_failure_at ?? at,
          last_error: { message, at },
          history: withFailedRun(context, message, at),
          slowed_from: context.slowed_from ?? (slower !== null && slower !== failed.poll_interval ? failed.poll_interval : null),
          deadlines: clearDeadline(context.deadlines, RETRY_DUE),
        });
      }),
      // Polling slowed down while syncs failed goes back to the interval it had.
      restorePollInterval: ({ context }) => restorePollInterval(ports, "imap", context),
      recordSuccess: assign(({ context, event }) => {
        assertEvent(event, "sync.done");
        const outcome = event.payload.outcome;
        const finished =
          context.progress === null
            ? null
            : { ...context.progress, total: outcome.total, done: outcome.done, failed: outcome.failed, skipped: outcome.skipped };
        const at = new Date(now()).toISOString();
        const problems = [
          ...(outcome.failed > 0 ? [`${outcome.failed} message(s) could not be imported; retried at the next sync`] : []),
          ...(outcome.skipped > 0 ? [skippedNote(outcome)] : []),
        ];
        const notes = {
          ...(outcome.changes !== null && hasChanges(outcome.changes) && { folder_changes: outcome.changes }),
          ...(outcome.server_changes.changed + outcome.server_changes.expunged + outcome.server_changes.deleted > 0 && {
            server_changes: outcome.server_changes,
          }),
          ...(outcome.applied.length > 0 && { changes_applied: outcome.applied.length }),
        };
        return {
          folders: outcome.folders,
          pending_changes: withoutApplied(context.pending_changes, outcome.applied),
          progress: finished,
          history:
            finished === null
              ? context.history
              : [{ ...finished, finished_at: at, outcome: "done" as const, skipped_messages: outcome.skipped_messages, ...notes }, ...context.history].slice(
                  0,
                  HISTORY,
                ),
          last_sync: at,
          last_error: problems.length > 0 ? { message: problems.join("; "), at } : null,
          failures: 0,
          first_failure_at: null,
          slowed_from: null,
        };
      }),
      logSkipped: ({ context, event }) => {
        assertEvent(event, "sync.done");
        for (const skipped of event.payload.outcome.skipped_messages) {
          ports.logger.warn(
            { kind: IMAP_KIND, key: context.identity_id, mailbox: skipped.mailbox, uid: skipped.uid, size: skipped.size, reason: skipped.reason },
            "IMAP message skipped",
          );
        }
      },
      disableIdentity: ({ context }) => {
        ports.logger.warn({ kind: IMAP_KIND, key: context.identity_id, since: context.first_failure_at }, "IMAP sync failing for too long: identity disabled");
        void store.identities
          .update(context.user_id, context.identity_id, (identity) => ({
            fields: { status: "inactive", infos: { ...identity.infos, last_error: context.last_error } },
          }))
          .catch((err: Error) => ports.logger.error({ kind: IMAP_KIND, key: context.identity_id, err: err.message }, "could not mark the identity inactive"));
        publishOrder(ports, "identitiesWorker", "delete_identity", { identity_id: context.identity_id, user_id: context.user_id });
      },
      clearRetry: assign(({ context }) => ({ deadlines: clearDeadline(context.deadlines, RETRY_DUE) })),
      forgetFailures: assign({ failures: 0, first_failure_at: null }),
      saveError: ({ context }) =>
        void store.identities.updateInfos(context.user_id, context.identity_id, { last_error: context.last_error }).catch(() => undefined),
      enqueueDelivery: assign({
        deliveries: ({ context, event }) => {
          assertEvent(event, "deliver");
          return withDelivery(context, event);
        },
      }),
      answerDelivery: enqueueActions(({ context, enqueue }, { output }: { output: Reply }) => {
        const [done, ...rest] = context.deliveries;
        enqueue(() => ports.reply(done?.replyTo, output));
        enqueue.assign({ deliveries: rest });
      }),
    },
  }).createMachine({
    id: IMAP_KIND,
    context: ({ input }) => ({
      identity_id: String(input.remote_id ?? input.key),
      user_id: String(input.user_id ?? ""),
      folders: [],
      pending_changes: [],
      progress: null,
      mode: "sync",
      history: [],
      requested: null,
      last_sync: null,
      last_error: null,
      failures: 0,
      first_failure_at: null,
      slowed_from: null,
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
                  sync: { target: "syncing", actions: { type: "startRun", params: "sync" } },
                  "mail.arrived": { target: "syncing", actions: { type: "startRun", params: "inbox" } },
                  fullfetch: { target: "syncing", actions: { type: "startRun", params: "fullfetch" } },
                  store_flags: { target: "syncing", actions: ["queueChange", { type: "startRun", params: "changes" }] },
                  move_to_trash: { target: "syncing", actions: ["queueChange", { type: "startRun", params: "changes" }] },
                },
              },
              syncing: {
                tags: ["busy"],
                initial: "connecting",
                states: {
                  connecting: { on: { "sync.connected": "fetching" } },
                  fetching: {},
                },
                invoke: {
                  src: "runSync",
                  input: ({ context }) => ({
                    identity_id: context.identity_id,
                    user_id: context.user_id,
                    folders: context.folders,
                    mode: context.mode,
                    pending: context.pending_changes,
                  }),
                },
                on: {
                  sync: { actions: { type: "coalesce", params: "sync" } },
                  "mail.arrived": { actions: { type: "coalesce", params: "inbox" } },
                  fullfetch: { actions: { type: "coalesce", params: "fullfetch" } },
                  store_flags: { actions: ["queueChange", { type: "coalesce", params: "changes" }] },
                  move_to_trash: { actions: ["queueChange", { type: "coalesce", params: "changes" }] },
                  "sync.progress": {
                    actions: assign(({ context, event }) => {
                      const { progress, folder } = event.payload;
                      return {
                        progress: context.progress === null ? null : { ...context.progress, ...progress },
                        // A fullfetch walks the whole mailbox: the incremental cursors stay where they are.
                        ...(context.mode !== "fullfetch" && { folders: withFolder(context.folders, folder) }),
                      };
                    }),
                  },
                  "sync.done": [
                    {
                      guard: "moreRequested",
                      target: "syncing",
                      reenter: true,
                      actions: [
                        "logSkipped",
                        "restorePollInterval",
                        "recordSuccess",
                        "saveError",
                        assign(({ context }) => ({
                          mode: context.requested as SyncMode,
                          requested: null,
                          progress: {
                            mode: context.requested as SyncMode,
                            total: 0,
                            done: 0,
                            failed: 0,
                            skipped: 0,
                            started_at: new Date(now()).toISOString(),
                          },
                        })),
                      ],
                    },
                    { target: "idle", actions: ["logSkipped", "restorePollInterval", "recordSuccess", "saveError"] },
                  ],
                  "sync.failed": [
                    { guard: "gone", target: "#imap.gone" },
                    { guard: "needsCredentials", target: "needsCredentials", actions: "awaitCredentials" },
                    { target: "backingOff", actions: "recordFailure" },
                  ],
                },
              },
              backingOff: {
                entry: "saveError",
                always: { guard: "giveUp", target: "disabled", actions: "disableIdentity" },
                on: {
                  [RETRY_DUE]: {
                    target: "syncing",
                    actions: [
                      assign(({ context }) => ({ deadlines: clearDeadline(context.deadlines, RETRY_DUE) })),
                      assign(({ context }) => ({
                        mode: context.requested ?? context.mode,
                        requested: null,
                        progress: {
                          mode: context.requested ?? context.mode,
                          total: 0,
                          done: 0,
                          failed: 0,
                          skipped: 0,
                          started_at: new Date(now()).toISOString(),
                        },
                      })),
                    ],
                  },
                  sync: { actions: { type: "coalesce", params: "sync" } },
                  "mail.arrived": { actions: { type: "coalesce", params: "inbox" } },
                  fullfetch: { actions: { type: "coalesce", params: "fullfetch" } },
                  // Carried by the retry.
                  store_flags: { actions: "queueChange" },
                  move_to_trash: { actions: "queueChange" },
                  // Reloaded (new credentials or servers): try again now rather than at the next retry.
                  [RELOADED_EVENT]: { target: "syncing", actions: ["clearRetry", { type: "startRun", params: "sync" }] },
                },
              },
              // Both wait for the identity to change: polls are ignored, changes made here are kept for
              // when it works again, and the reload that a change brings syncs at once.
              needsCredentials: { entry: "saveError", on: untilReloaded },
              disabled: { entry: "clearRetry", on: untilReloaded },
            },
          },
          delivery: deliveryRegion<ImapWorkerContext, Reply>(),
          push: {
            // Watching starts after a sync succeeded, and pauses while syncs fail (a wrong password must
            // not be tried twice as often).
            initial: "waiting",
            states: {
              waiting: {
                on: { "sync.done": { guard: () => settings.push, target: "watching" } },
              },
              watching: {
                always: { guard: ({ context }) => context.failures > 0, target: "waiting" },
                invoke: { src: "watch", input: ({ context }) => ({ user_id: context.user_id, identity_id: context.identity_id, mailbox: INBOX }) },
              },
            },
          },
        },
      },
      // The identity was deleted: the worker has nothing left to do and is removed.
      gone: { type: "final" },
    },
  });
}
