// The node side of scenario 1's liveness figures: starts the heartbeat observer (heartbeat-observer.ts,
// another process), tells it where each phase of the scenario begins, and adds what only the node
// process knows — how late its own event loop ran, and whether it fenced itself off.
import { monitorEventLoopDelay } from "node:perf_hooks";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsEndpoint } from "../../runtime/nats-endpoint.ts";
import { runChild } from "./child-protocol.ts";
import type { HeartbeatObservation, HeartbeatObserverTask, OrdersLiveness, OrdersPhase } from "./results.ts";

// Under caliopen.>, like the progress reports.
const READY_SUBJECT = "caliopen.bench.liveness.ready";
const CONTROL_SUBJECT = "caliopen.bench.liveness.control";
// The scenario's own timeout ends the observer first (its cleanup kills its children).
const OBSERVER_TIMEOUT_MS = 600_000;
const READY_TIMEOUT_MS = 60_000;
const LOOP_RESOLUTION_MS = 10;

export interface LivenessWatch {
  /** Marks the start of a phase (and the end of the previous one), for the observer and for the node's figures. */
  phase(phase: OrdersPhase): Promise<void>;
  /** Ends the last phase and collects the figures. */
  stop(): Promise<OrdersLiveness>;
}

export interface WatchedNode {
  id: string;
  failureDetectionMs: number;
  /** The node's log tally (log-tally.ts). */
  warnings(): Record<string, number>;
}

const fencings = (warnings: Record<string, number>) =>
  Object.entries(warnings).reduce((total, [message, times]) => total + (/fencing this node off/.test(message) ? times : 0), 0);

/** Resolves once the observer watches the node's heartbeats; `nc` is a connection of the scenario process. */
export async function watchLiveness(nc: NatsConnection, endpoint: NatsEndpoint, node: WatchedNode): Promise<LivenessWatch> {
  const ready = nc.subscribe(READY_SUBJECT, { max: 1, timeout: READY_TIMEOUT_MS });
  await nc.flush();
  const task: HeartbeatObserverTask = {
    endpoint,
    node: node.id,
    failureDetectionMs: node.failureDetectionMs,
    readySubject: READY_SUBJECT,
    controlSubject: CONTROL_SUBJECT,
  };
  const observer = runChild<HeartbeatObservation>("heartbeat-observer.ts", task, { timeoutMs: OBSERVER_TIMEOUT_MS });
  // Awaited in stop(); until then a failure must not surface as an unhandled rejection.
  observer.catch(() => undefined);
  const watching = (async () => {
    for await (const _ of ready) return;
  })();
  await Promise.race([
    watching,
    observer.then(() => {
      throw new Error("the heartbeat observer ended before it watched");
    }),
  ]);

  let loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  const own: { phase: OrdersPhase; fenced: number; nodeLoopMaxMs: number }[] = [];
  let open: { phase: OrdersPhase; fencedBefore: number } | null = null;
  const close = () => {
    if (open === null) return;
    own.push({ phase: open.phase, fenced: fencings(node.warnings()) - open.fencedBefore, nodeLoopMaxMs: loop.max / 1e6 });
    open = null;
  };
  const tell = async (message: object) => {
    nc.publish(CONTROL_SUBJECT, JSON.stringify(message));
    // Before the caller blocks this event loop (backlog rounds): the marker must be on its way.
    await nc.flush();
  };
  return {
    async phase(phase) {
      close();
      loop.disable();
      loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
      loop.enable();
      // A histogram records nothing until its first tick: a backlog round blocking the loop at once would not show.
      await new Promise((resolve) => setTimeout(resolve, 2 * LOOP_RESOLUTION_MS));
      open = { phase, fencedBefore: fencings(node.warnings()) };
      await tell({ phase });
    },
    async stop() {
      close();
      loop.disable();
      await tell({ stop: true });
      const seen = await observer;
      return {
        windowMs: seen.windowMs,
        observerLoopMaxMs: seen.observerLoopMaxMs,
        phases: seen.phases.flatMap((phase) => {
          const mine = own.find((entry) => entry.phase === phase.phase);
          return mine === undefined ? [] : [{ ...phase, fenced: mine.fenced, nodeLoopMaxMs: mine.nodeLoopMaxMs }];
        }),
      };
    },
  };
}
