// The identities worker's actor: one poller per remote identity (kind `poller`, keyed by identity_id).
// It follows the identity in the store: while it is an active remote email/IMAP/Twitter identity, it
// emits `sync` every poll interval, or at the times its poll schedule names (poll-schedule.ts), and keeps the bridge's worker announced (add/reload/remove_worker);
// otherwise it sleeps. Its next tick is an absolute deadline in its context, so a restart or a handoff
// to another node neither skips nor doubles a tick.

import { assign, fromPromise, setup } from "xstate";
import { ACTOR_KINDS } from "../../contract/actor-kinds.ts";
import type { ContractMessage } from "../../contract/contract-message.ts";
import { handledOrders } from "../../contract/contract-table.ts";
import { publishOrder } from "../../contract/emit-order.ts";
import type { ActorFamily, ActorInput, ActorPorts, DeadlineMessage } from "../../runtime/actor-family.ts";
import { type BackoffPolicy, backoffDelay } from "../../runtime/backoff.ts";
import { clearDeadline, type Deadlines, setDeadline } from "../../runtime/deadlines.ts";
import { defaultPollInterval } from "../store/identities.ts";
import type { Identity, IdentityProtocol } from "../store/model.ts";
import type { Store } from "../store/store.ts";
import { intervalMs, nextDue, nextScheduled, SYNC_SUBJECT, scheduleError, scheduleOf, WORKER_SUBJECT } from "./poll-schedule.ts";

export const POLLER_KIND = ACTOR_KINDS.poller;
const POLL_DUE = "poll.due";
const RETRY_DUE = "retry.due";
const LOAD_RETRY: BackoffPolicy = { initialMs: 1_000, maxMs: 60_000, factor: 2, jitter: 0.2 };

export interface PollerContext {
  identity_id: string;
  user_id: string;
  protocol: IdentityProtocol | null;
  /** Minutes between polls, as configured (a decimal string). */
  poll_interval: string | null;
  /** When to poll instead, a cron pattern in UTC (the identity's `poll_schedule`); null: every poll_interval. */
  poll_schedule: string | null;
  /** An interval a bridge asked for (update_interval), until it is stored on the identity. */
  requested_interval: string | null;
  /** Why the poller is not polling (dormant), for operators. */
  reason: string | null;
  /** The bridge was told to run a worker for this identity (add_worker sent, no remove_worker since). */
  worker_announced: boolean;
  /** update_identity arrived: the bridge's worker must reload once the identity is read again. */
  reload_pending: boolean;
  last_poll: string | null;
  polls: number;
  load_failures: number;
  last_error: string | null;
  deadlines: Deadlines;
}

type Loaded = { identity: Identity | null };

/** The identitiesWorker orders about its identity, and its two deadlines. */
type PollerEvent =
  | ContractMessage<"identitiesWorker", "add_identity">
  | ContractMessage<"identitiesWorker", "update_identity">
  | ContractMessage<"identitiesWorker", "delete_identity">
  | ContractMessage<"identitiesWorker", "update_interval">
  | DeadlineMessage<typeof POLL_DUE>
  | DeadlineMessage<typeof RETRY_DUE>;

/** Why an identity is not polled, or null when it is. */
function notPolledBecause(identity: Identity): string | null {
  if (identity.type !== "remote") return `it is a ${identity.type} identity`;
  if (identity.status !== "active") return `it is ${identity.status}`;
  if (SYNC_SUBJECT[identity.protocol] === undefined) return `${identity.protocol} identities are not polled`;
  const schedule = scheduleOf(identity.infos);
  const unusable = schedule === null ? null : scheduleError(schedule);
  if (unusable !== null) return `its poll_schedule cannot be followed: ${unusable}`;
  return null;
}

function gone(identity: Identity | null, userId: string): boolean {
  return identity === null || identity.status === "deleted" || identity.user_id !== userId;
}

export function pollerFamily(store: Store, now: () => number = Date.now): ActorFamily {
  return {
    kind: POLLER_KIND,
    description: "polls one remote identity: emits sync every poll interval",
    // Any identitiesWorker order about an identity reaches its poller, which reads the identity itself.
    startsOnFirstMessage: true,
    // The identitiesWorker orders only: `poll.due` and `retry.due` are the poller's own deadlines.
    accepts: handledOrders({ identitiesWorker: ["add_identity", "update_identity", "delete_identity", "update_interval"] }),
    createMachine: (ports: ActorPorts) => pollerMachine(store, ports, now),
  };
}

function pollerMachine(store: Store, ports: ActorPorts, now: () => number) {
  const account = (context: PollerContext) => ({ remote_id: context.identity_id, user_id: context.user_id });

  const announce = (context: PollerContext, order: "add_worker" | "reload_worker" | "remove_worker") => {
    const subject = context.protocol === null ? undefined : WORKER_SUBJECT[context.protocol];
    if (subject !== undefined) publishOrder(ports, subject, order, account(context));
  };

  const machine = setup({
    types: {
      context: {} as PollerContext,
      events: {} as PollerEvent,
      input: {} as ActorInput,
    },
    actors: {
      load: fromPromise<Loaded, { user_id: string; identity_id: string }>(async ({ input }) => ({
        identity: await store.identities.get(input.user_id, input.identity_id),
      })),
      record: fromPromise<void, { context: PollerContext }>(async ({ input }) => {
        const { context } = input;
        const next = context.deadlines[POLL_DUE];
        await store.identities.updateInfos(context.user_id, context.identity_id, {
          last_poll: context.last_poll,
          next_poll: next === undefined ? null : new Date(next).toISOString(),
          ...(context.requested_interval !== null && { poll_interval: context.requested_interval }),
        });
      }),
    },
    guards: {
      gone: ({ context }, { identity }: Loaded) => gone(identity, context.user_id),
      polled: (_, { identity }: Loaded) => identity !== null && notPolledBecause(identity) === null,
    },
    actions: {
      // Takes the identity's settings; moves the next tick only when the interval or the schedule changed.
      configure: assign(({ context }, { identity }: { identity: Identity }) => {
        const configured = identity.infos.poll_interval;
        const interval = intervalMs(configured) === null ? defaultPollInterval(identity.protocol) : (configured as string);
        const schedule = scheduleOf(identity.infos);
        const due = context.deadlines[POLL_DUE];
        const lastPoll = context.last_poll === null ? undefined : Date.parse(context.last_poll);
        let next: number | null;
        if (due !== undefined && interval === context.poll_interval && schedule === (context.poll_schedule ?? null)) next = due;
        else if (schedule !== null) next = nextScheduled(schedule, now(), lastPoll);
        else if (lastPoll !== undefined) next = nextDue(lastPoll, intervalMs(interval) as number, now());
        else next = now(); // never polled: the first sync goes out at once
        return {
          protocol: identity.protocol,
          poll_interval: interval,
          poll_schedule: schedule,
          reason: null,
          load_failures: 0,
          last_error: null,
          deadlines: clearDeadline(next === null ? clearDeadline(context.deadlines, POLL_DUE) : setDeadline(context.deadlines, POLL_DUE, next), RETRY_DUE),
        };
      }),
      announceWorker: ({ context }) => {
        if (!context.worker_announced) announce(context, "add_worker");
        else if (context.reload_pending) announce(context, "reload_worker");
      },
      markAnnounced: assign({ worker_announced: true, reload_pending: false }),
      /** remove_worker to the bridge of `protocol` (the identity's, which may have just been read), if it was told to run one. */
      withdrawWorker: ({ context }, { protocol }: { protocol: IdentityProtocol | null }) => {
        if (context.worker_announced) announce({ ...context, protocol }, "remove_worker");
      },
      sleep: assign(({ context }, { identity }: { identity: Identity }) => ({
        protocol: identity.protocol,
        reason: notPolledBecause(identity),
        worker_announced: false,
        reload_pending: false,
        load_failures: 0,
        last_error: null,
        deadlines: clearDeadline(clearDeadline(context.deadlines, POLL_DUE), RETRY_DUE),
      })),
      retire: assign({ worker_announced: false, deadlines: {} }),
      emitSync: ({ context }) => {
        const subject = context.protocol === null ? undefined : SYNC_SUBJECT[context.protocol];
        if (subject !== undefined) publishOrder(ports, subject, "sync", account(context));
      },
      recordPoll: assign(({ context }) => {
        const due = context.deadlines[POLL_DUE] ?? now();
        // A snapshot saved before schedules existed has none. A schedule that fires no more leaves no next tick.
        const schedule = context.poll_schedule ?? null;
        const next = schedule === null ? nextDue(due, intervalMs(context.poll_interval) as number, now()) : nextScheduled(schedule, now(), due);
        return {
          polls: context.polls + 1,
          last_poll: new Date(now()).toISOString(),
          deadlines: next === null ? clearDeadline(context.deadlines, POLL_DUE) : setDeadline(context.deadlines, POLL_DUE, next),
        };
      }),
      noteLoadFailure: assign(({ context }, { error }: { error: unknown }) => {
        const failures = context.load_failures + 1;
        return {
          load_failures: failures,
          last_error: `could not read the identity: ${String(error)}`,
          deadlines: setDeadline(context.deadlines, RETRY_DUE, now() + backoffDelay(LOAD_RETRY, failures)),
        };
      }),
      logLoadFailure: ({ context }) =>
        ports.logger.warn(
          { kind: POLLER_KIND, key: context.identity_id, attempt: context.load_failures, err: context.last_error },
          "poller will retry reading its identity",
        ),
      recordFailed: ({ context }, { error }: { error: unknown }) =>
        ports.logger.warn({ kind: POLLER_KIND, key: context.identity_id, err: String(error) }, "could not record the poll schedule"),
    },
  });

  // The identity a `load` read, for guards and actions; the branches after `gone` see one that exists.
  const loaded = ({ event }: { event: { output: Loaded } }): Loaded => event.output;
  const readIdentity = ({ event }: { event: { output: Loaded } }) => ({ identity: event.output.identity as Identity });
  const RETIRE = [{ type: "withdrawWorker", params: ({ context }: { context: PollerContext }) => ({ protocol: context.protocol }) }, "retire"] as const;
  const SLEEP = [
    { type: "withdrawWorker", params: ({ event }: { event: { output: Loaded } }) => ({ protocol: (event.output.identity as Identity).protocol }) },
    { type: "sleep", params: readIdentity },
  ] as const;
  const SYNC = ["emitSync", "recordPoll"] as const;
  const LOAD_FAILED = [{ type: "noteLoadFailure", params: ({ event }: { event: { error: unknown } }) => ({ error: event.error }) }, "logLoadFailure"] as const;

  return machine.createMachine({
    id: POLLER_KIND,
    context: ({ input }) => ({
      identity_id: String(input.identity_id ?? input.key),
      user_id: String(input.user_id ?? ""),
      protocol: null,
      poll_interval: null,
      poll_schedule: null,
      requested_interval: null,
      reason: null,
      worker_announced: false,
      reload_pending: false,
      last_poll: null,
      polls: 0,
      load_failures: 0,
      last_error: null,
      deadlines: {},
    }),
    initial: "loading",
    // The identitiesWorker orders, in every state but the final one.
    on: {
      add_identity: { target: ".loading", reenter: true },
      update_identity: { target: ".loading", reenter: true, actions: assign({ reload_pending: true }) },
      delete_identity: { target: ".deleted", actions: RETIRE },
      // The bridge asks for another interval: stored on the identity, then applied like an update.
      update_interval: {
        target: ".storingInterval",
        reenter: true,
        actions: assign({ requested_interval: ({ event }) => event.payload.poll_intervall.trim() }),
      },
    },
    states: {
      loading: {
        tags: ["busy"],
        invoke: {
          src: "load",
          input: ({ context }) => ({ user_id: context.user_id, identity_id: context.identity_id }),
          onDone: [
            { guard: { type: "gone", params: loaded }, target: "deleted", actions: RETIRE },
            {
              guard: { type: "polled", params: loaded },
              target: "recording",
              actions: [{ type: "configure", params: readIdentity }, "announceWorker", "markAnnounced"],
            },
            { target: "dormant", actions: SLEEP },
          ],
          onError: { target: "waiting", actions: LOAD_FAILED },
        },
      },
      waiting: {
        on: { [RETRY_DUE]: { target: "loading", actions: assign({ deadlines: ({ context }) => clearDeadline(context.deadlines, RETRY_DUE) }) } },
      },
      polling: {
        on: { [POLL_DUE]: "checking" },
      },
      // A tick: the identity is read again, so a poller never syncs an identity that is gone or disabled.
      checking: {
        tags: ["busy"],
        invoke: {
          src: "load",
          input: ({ context }) => ({ user_id: context.user_id, identity_id: context.identity_id }),
          onDone: [
            { guard: { type: "gone", params: loaded }, target: "deleted", actions: RETIRE },
            { guard: { type: "polled", params: loaded }, target: "recording", actions: SYNC },
            { target: "dormant", actions: SLEEP },
          ],
          // The store is unreachable: the sync still goes out on time (the bridge reads the store itself).
          onError: { target: "recording", actions: SYNC },
        },
      },
      recording: {
        tags: ["busy"],
        invoke: {
          src: "record",
          input: ({ context }) => ({ context }),
          onDone: "polling",
          onError: { target: "polling", actions: { type: "recordFailed", params: ({ event }) => ({ error: event.error }) } },
        },
      },
      storingInterval: {
        tags: ["busy"],
        invoke: {
          src: "record",
          input: ({ context }) => ({ context }),
          onDone: { target: "loading", actions: assign({ requested_interval: null }) },
          onError: { target: "waiting", actions: LOAD_FAILED },
        },
      },
      dormant: {},
      deleted: { type: "final" },
    },
  });
}
