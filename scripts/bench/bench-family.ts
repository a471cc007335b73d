// The bench actor: as small as a real actor gets. `sync` bumps a counter in its context (so a
// "snapshot" family has something to persist); `deliver` answers the requester through its inbox.
import { assign, setup } from "xstate";
import type { ActorFamily, ActorMessage, ActorPorts } from "../../runtime/actor-family.ts";
import { ok } from "../../runtime/reply.ts";
import { DELIVER_ORDER, SYNC_ORDER } from "./bench-payloads.ts";

export const BENCH_KIND = "bench";

interface BenchContext {
  key: string;
  syncs: number;
}

export interface BenchFamilyOptions {
  persistence: "snapshot" | "none";
  /** Called after each `sync` is applied: the bench counts processed orders with it. */
  onSync?: () => void;
  /** Let the cluster start an actor on the first order for its key. */
  startsOnFirstMessage?: boolean;
}

export function benchFamily(options: BenchFamilyOptions): ActorFamily {
  const onSync = options.onSync ?? (() => undefined);
  return {
    kind: BENCH_KIND,
    persistence: options.persistence,
    startsOnFirstMessage: options.startsOnFirstMessage ?? false,
    // The two contract orders the bench sends, checked like a real worker's.
    accepts: { sync: SYNC_ORDER.schema, deliver: DELIVER_ORDER.schema },
    description: "benchmark actor",
    createMachine: (ports: ActorPorts) =>
      setup({
        types: { context: {} as BenchContext, events: {} as ActorMessage, input: {} as { key: string } },
      }).createMachine({
        id: BENCH_KIND,
        context: ({ input }) => ({ key: input.key, syncs: 0 }),
        initial: "idle",
        states: {
          idle: {
            on: {
              sync: { actions: [assign({ syncs: ({ context }) => context.syncs + 1 }), () => onSync()] },
              deliver: {
                actions: ({ context, event }) => ports.reply(event.replyTo, ok("delivered", { message_id: event.payload.message_id, remote_id: context.key })),
              },
            },
          },
        },
      }),
  };
}
