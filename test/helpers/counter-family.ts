// A small actor family for runtime tests: counts, answers requests, crashes on demand, keeps a durable
// deadline, and has a `busy` state for graceful-shutdown tests. From the bus it takes only the messages
// in COUNTER_ACCEPTS; `crash`, `failAsync`, `reloaded` and its `tick.due` deadline are the node's own.
import { assign, fromPromise, setup } from "xstate";
import type { ActorFamily, ActorMessage, ActorPorts } from "../../runtime/actor-family.ts";
import { clearDeadline, type Deadlines, setDeadline } from "../../runtime/deadlines.ts";
import type { PayloadSchema } from "../../runtime/payload-schema.ts";
import { ok } from "../../runtime/reply.ts";

export interface CounterContext {
  key: string;
  count: number;
  fired: number[];
  password: string;
  deadlines: Deadlines;
}

/** What anyone on the bus may send a counter. */
export const COUNTER_ACCEPTS: Readonly<Record<string, PayloadSchema>> = {
  inc: { by: { type: "number", required: false } },
  get: {},
  sync: {},
  work: { ms: { type: "number", required: false } },
  schedule: { at: { type: "number", required: true } },
  finish: {},
};

export function counterFamily(kind = "counter", persistence: "snapshot" | "none" = "snapshot", startsOnFirstMessage = false): ActorFamily {
  return {
    kind,
    persistence,
    startsOnFirstMessage,
    accepts: COUNTER_ACCEPTS,
    description: "test counter",
    createMachine: (ports: ActorPorts) =>
      setup({
        types: { context: {} as CounterContext, events: {} as ActorMessage, input: {} as { key: string } },
        actors: {
          work: fromPromise<void, { ms: number }>(({ input }) => new Promise((resolve) => setTimeout(resolve, input.ms))),
          failAsync: fromPromise<void>(() => Promise.reject(new Error("async boom (asked to fail)"))),
        },
      }).createMachine({
        id: kind,
        context: ({ input }) => ({ key: input.key, count: 0, fired: [], password: "hunter2", deadlines: {} }),
        initial: "idle",
        states: {
          idle: {
            on: {
              inc: { actions: assign({ count: ({ context, event }) => context.count + (Number(event.payload.by) || 1) }) },
              // What contract orders routed to this family look like: counted, and announced.
              sync: {
                actions: [
                  assign({ count: ({ context }) => context.count + 1 }),
                  ({ context }) => ports.publish("test.synced", { key: context.key, count: context.count }),
                ],
              },
              get: { actions: ({ context, event }) => ports.reply(event.replyTo, ok("count", { count: context.count })) },
              crash: {
                actions: () => {
                  throw new Error("boom (asked to crash)");
                },
              },
              schedule: {
                actions: assign({ deadlines: ({ context, event }) => setDeadline(context.deadlines, "tick.due", Number(event.payload.at)) }),
              },
              "tick.due": {
                actions: [
                  assign({
                    fired: ({ context, event }) => [...context.fired, Number(event.payload.at)],
                    deadlines: ({ context }) => clearDeadline(context.deadlines, "tick.due"),
                  }),
                  ({ event }) => ports.publish("test.fired", { at: event.payload.at }),
                ],
              },
              finish: "finished",
              // A reload's notice (RELOADED_EVENT), counted so tests can see it.
              reloaded: { actions: assign({ count: ({ context }) => context.count + 1000 }) },
              work: "working",
              failAsync: "failing",
            },
          },
          failing: { invoke: { src: "failAsync" } },
          finished: { type: "final" },
          working: {
            tags: ["busy"],
            invoke: {
              src: "work",
              input: ({ event }) => ({ ms: Number(event.payload.ms) || 100 }),
              onDone: {
                target: "idle",
                actions: [assign({ count: ({ context }) => context.count + 1 }), ({ context }) => ports.publish("test.worked", { key: context.key })],
              },
            },
          },
        },
      }),
  };
}
