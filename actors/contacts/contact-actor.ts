// One actor per contact (kind `contact`, keyed by contact id) runs the contact's orders one at a time:
// ContactAction `contact_update` and KeyAction `discover_key` (keyed by `contact_id`), `publish_key` and
// `delete_key` (keyed by `resource_id`, the contact that owns the key). Two orders for one contact never
// run at once, so a discovery adding keys and a recomputation reading them cannot interleave, and a
// key's publication and withdrawal happen in the order they were given.
//
//   idle            nothing to do (passivated after a while: only its snapshot stays); after
//                   `finishAfterMs` without an order (the `finish.due` deadline) it finishes: the node
//                   removes it, snapshot and all, and the contact's next order starts a new one. A node
//                   holds actors for the contacts busy lately, not for every contact ever touched;
//                   what a finished actor showed operators (its history) goes with it;
//   working         runs the first order of `queue` (the others wait behind it, oldest first);
//   waitingToRetry  the first order failed in a way that may pass (a key server down): `retry` says why
//                   and which try it was, the `retry.due` deadline when it runs again (persisted, so a
//                   restart or a handoff keeps it). After its last try it is kept as a dead letter of
//                   its subject, as the entry point does for a durable order that kept failing.
//
// The queue is bounded: beyond it an order is dead-lettered. A contact_update or discover_key already
// waiting covers a new one (both recompute from the store), so duplicates are folded into it.

import { assertEvent, assign, fromPromise, setup } from "xstate";
import { ACTOR_KINDS } from "../../contract/actor-kinds.ts";
import { handledOrders } from "../../contract/contract-table.ts";
import type { ActorFamily, ActorInput, ActorPorts, DeadlineMessage } from "../../runtime/actor-family.ts";
import { type BackoffPolicy, backoffDelay } from "../../runtime/backoff.ts";
import { clearDeadline, type Deadlines, setDeadline } from "../../runtime/deadlines.ts";
import {
  type ContactOrderDeps,
  type ContactOrderMessage,
  type ContactOrderName,
  coalesces,
  mayPass,
  ORDER_SUBJECT,
  orderPayload,
  type QueuedOrder,
  queuedOrder,
  runContactOrder,
} from "./contact-orders.ts";

export const CONTACT_KIND = ACTOR_KINDS.contact;
export const RETRY_DUE = "retry.due";
export const FINISH_DUE = "finish.due";
/** Finished orders kept in the context, for operators. */
const HISTORY = 5;

export interface ContactActorOptions {
  /** Pause before each new try of an order that failed in a way that may pass. */
  retry: BackoffPolicy;
  /** Tries of such an order in all (the first included) before it is dead-lettered. */
  maxTries: number;
  /** Orders waiting for one contact at most; one more is dead-lettered. */
  maxQueued: number;
  /** An actor idle this long finishes (and is removed). */
  finishAfterMs: number;
}

// The pauses and tries the entry point gives a durable order that throws RetryLater.
export const DEFAULT_CONTACT_OPTIONS: ContactActorOptions = {
  retry: { initialMs: 2_000, maxMs: 5 * 60_000, factor: 3, jitter: 0.2 },
  maxTries: 6,
  maxQueued: 32,
  finishAfterMs: 10 * 60_000,
};

export interface FinishedOrder {
  order: ContactOrderName;
  key_id?: string;
  finished_at: string;
  outcome: "done" | "dead-lettered";
  /** What it did, or why it failed. */
  note: string;
}

export interface ContactActorContext {
  contact_id: string;
  /** Orders to run, oldest first; the first is the one running (or waiting to be tried again). */
  queue: QueuedOrder[];
  /** Failed tries of the first order so far. */
  failures: number;
  /** Why the first order is waiting to be tried again, and which try failed. */
  retry: { error: string; try: number; at: string } | null;
  last_error: { message: string; at: string } | null;
  history: FinishedOrder[];
  deadlines: Deadlines;
}

/** The contact's four orders, and its two deadlines. */
type ContactEvent = ContactOrderMessage | DeadlineMessage<typeof RETRY_DUE> | DeadlineMessage<typeof FINISH_DUE>;

const ORDER_TYPES = ["contact_update", "discover_key", "publish_key", "delete_key"] as const satisfies readonly ContactOrderMessage["type"][];

/** What an order's run gave: the note of its success, or why it failed. */
const doneNote = ({ event }: { event: { output: string } }) => ({ note: event.output });
const failure = ({ event }: { event: { error: unknown } }) => ({ error: event.error instanceof Error ? event.error.message : String(event.error) });

export function contactFamily(deps: Omit<ContactOrderDeps, "logger">, options: Partial<ContactActorOptions> = {}, now: () => number = Date.now): ActorFamily {
  const settings = { ...DEFAULT_CONTACT_OPTIONS, ...options };
  return {
    kind: CONTACT_KIND,
    description: "runs one contact's contact_update, discover_key, publish_key and delete_key orders, one at a time",
    // Started by its first order, once the router checked that the contact exists (contact-admission.ts).
    startsOnFirstMessage: true,
    // Its orders only: `retry.due` and the results of its work come from the node itself.
    accepts: handledOrders({ contactAction: ["contact_update"], keyAction: ["discover_key", "publish_key", "delete_key"] }),
    createMachine: (ports) => contactMachine({ ...deps, logger: ports.logger.child({ kind: CONTACT_KIND }) }, ports, settings, now),
  };
}

function contactMachine(deps: ContactOrderDeps, ports: ActorPorts, settings: ContactActorOptions, now: () => number) {
  const iso = () => new Date(now()).toISOString();
  const runOrder = fromPromise<string, { contact_id: string; order: QueuedOrder }>(({ input }) =>
    runContactOrder({ ...deps, logger: deps.logger.child({ key: input.contact_id }) }, input.contact_id, input.order),
  );
  const finished = (context: ContactActorContext, outcome: FinishedOrder["outcome"], note: string): FinishedOrder[] => {
    const head = context.queue[0];
    if (head === undefined) return context.history;
    return [{ order: head.order, ...(head.key_id !== undefined && { key_id: head.key_id }), finished_at: iso(), outcome, note }, ...context.history].slice(
      0,
      HISTORY,
    );
  };
  // What every state does with an order: fold it into one waiting, refuse it when the queue is full, or queue it.
  const onOrder = [{ guard: "alreadyWaiting" as const }, { guard: "queueFull" as const, actions: "refuseQueueFull" as const }, { actions: "enqueue" as const }];

  return setup({
    types: { context: {} as ContactActorContext, events: {} as ContactEvent, input: {} as ActorInput },
    actors: { runOrder },
    guards: {
      hasOrders: ({ context }) => context.queue.length > 0,
      moreOrders: ({ context }) => context.queue.length > 1,
      alreadyWaiting: ({ context, event }) => {
        assertEvent(event, ORDER_TYPES);
        return coalesces(context.queue, queuedOrder(event, ""));
      },
      queueFull: ({ context }) => context.queue.length >= settings.maxQueued,
      triesLeft: ({ context }) => {
        const head = context.queue[0];
        return head !== undefined && mayPass(head) && context.failures + 1 < settings.maxTries;
      },
    },
    actions: {
      enqueue: assign(({ context, event }) => {
        assertEvent(event, ORDER_TYPES);
        return { queue: [...context.queue, queuedOrder(event, iso())] };
      }),
      refuseQueueFull: ({ context, event }) => {
        assertEvent(event, ORDER_TYPES);
        const order = queuedOrder(event, iso());
        ports.deadLetter(
          ORDER_SUBJECT[order.order],
          `${order.order} refused: contact ${context.contact_id} already has ${context.queue.length} orders waiting; send it again later`,
          orderPayload(context.contact_id, order),
        );
      },
      recordDone: assign(({ context }, { note }: { note: string }) => ({
        queue: context.queue.slice(1),
        failures: 0,
        retry: null,
        history: finished(context, "done", note),
      })),
      scheduleRetry: assign(({ context }, { error }: { error: string }) => {
        const failures = context.failures + 1;
        const at = iso();
        return {
          failures,
          retry: { error, try: failures, at },
          last_error: { message: `${context.queue[0]?.order ?? "order"} failed (try ${failures} of ${settings.maxTries}): ${error}`, at },
          deadlines: setDeadline(context.deadlines, RETRY_DUE, now() + backoffDelay(settings.retry, failures)),
        };
      }),
      deadLetterFirst: ({ context }, { error }: { error: string }) => {
        const head = context.queue[0];
        if (head === undefined) return;
        const tries = context.failures + 1;
        const reason = `${head.order} failed${tries > 1 ? ` ${tries} times` : ""}: ${error}`;
        deps.logger.warn({ key: context.contact_id, order: head.order, tries, err: error }, "contact order given up");
        ports.deadLetter(ORDER_SUBJECT[head.order], reason, orderPayload(context.contact_id, head));
      },
      dropFirst: assign(({ context }, { error }: { error: string }) => {
        const at = iso();
        const message = `${context.queue[0]?.order ?? "order"} failed: ${error}`;
        return {
          queue: context.queue.slice(1),
          failures: 0,
          retry: null,
          last_error: { message, at },
          history: finished(context, "dead-lettered", error),
        };
      }),
      clearRetryDeadline: assign(({ context }) => ({ deadlines: clearDeadline(context.deadlines, RETRY_DUE) })),
      // Only when nothing waits: with an order queued, idle is left at once.
      scheduleFinish: assign(({ context }) =>
        context.queue.length > 0 ? {} : { deadlines: setDeadline(context.deadlines, FINISH_DUE, now() + settings.finishAfterMs) },
      ),
      clearFinish: assign(({ context }) => ({ deadlines: clearDeadline(context.deadlines, FINISH_DUE) })),
    },
  }).createMachine({
    id: CONTACT_KIND,
    context: ({ input }) => ({
      contact_id: String(input.contact_id ?? input.key),
      queue: [],
      failures: 0,
      retry: null,
      last_error: null,
      history: [],
      deadlines: {},
    }),
    on: { contact_update: onOrder, discover_key: onOrder, publish_key: onOrder, delete_key: onOrder },
    initial: "idle",
    states: {
      idle: {
        entry: "scheduleFinish",
        exit: "clearFinish",
        // An order just queued (or queued in a restored snapshot) starts at once.
        always: { guard: "hasOrders", target: "working" },
        on: { [FINISH_DUE]: "finished" },
      },
      working: {
        tags: ["busy"],
        invoke: {
          src: "runOrder",
          input: ({ context }) => ({ contact_id: context.contact_id, order: context.queue[0] as QueuedOrder }),
          onDone: [
            { guard: "moreOrders", target: "working", reenter: true, actions: { type: "recordDone", params: doneNote } },
            { target: "idle", actions: { type: "recordDone", params: doneNote } },
          ],
          onError: [
            { guard: "triesLeft", target: "waitingToRetry", actions: { type: "scheduleRetry", params: failure } },
            {
              target: "idle",
              actions: [
                { type: "deadLetterFirst", params: failure },
                { type: "dropFirst", params: failure },
              ],
            },
          ],
        },
      },
      waitingToRetry: {
        on: { [RETRY_DUE]: { target: "working", actions: "clearRetryDeadline" } },
      },
      finished: { type: "final" },
    },
  });
}
