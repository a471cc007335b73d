// Where an order's CPU goes, layer by layer, each timed on its own in one process over the same orders
// and keys as scenario 1: the entry point's decoding and validation, the actor (ActorCell over XState),
// and the JetStream publish that routeToActor awaits for every published order — the latter with
// nats.js's default per-request stack traces and with `noAsyncTraces`, the connection option that
// skips them. Layers run in turn, several passes, and report their median pass, so none is favoured
// by running first (cold JIT) or last (bigger heap).
import { randomUUID } from "node:crypto";
import { jetstream, jetstreamManager, RetentionPolicy } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { type AnyActorRef, type AnyMachineSnapshot, createActor } from "xstate";
import type { ActorMessage } from "../../runtime/actor-family.ts";
import { decodeJson, encodeJson, isJsonObject } from "../../runtime/json.ts";
import { natsConnectOptions } from "../../runtime/nats-endpoint.ts";
import { validatePayload } from "../../runtime/payload-schema.ts";
import { BENCH_KIND, benchFamily } from "./bench-family.ts";
import { benchKey, encodedOrders, KEY_FIELD, SYNC_ORDER } from "./bench-payloads.ts";
import { openBenchRuntime } from "./bench-runtime.ts";
import { childMain } from "./child-protocol.ts";
import { registerCleanup } from "./cleanup.ts";
import type { DispatchResult, DispatchTask } from "./results.ts";
import { median } from "./stats.ts";

const PASSES = 3;
const IN_FLIGHT = 1_000;

/** One order through the layer: `run`; async layers run IN_FLIGHT orders at a time. */
type Layer = {
  name: string;
  /** Async layers do less: their own, smaller count. */
  events?: number;
} & ({ async?: false; run(index: number): void } | { async: true; run(index: number): Promise<unknown> });

interface Timing {
  cpu: number;
  wall: number;
}

/** CPU and wall µs per order over `events` orders, after `warmup` untimed ones. */
async function timeLayer(layer: Layer, task: DispatchTask): Promise<Timing> {
  const events = layer.events ?? task.events;
  const warmup = Math.min(task.warmup, events);
  const runRange = async (from: number, count: number) => {
    if (layer.async !== true) {
      for (let i = from; i < from + count; i++) layer.run(i);
      return;
    }
    for (let i = from; i < from + count; i += IN_FLIGHT) {
      const pending: Promise<unknown>[] = [];
      for (let j = i; j < Math.min(i + IN_FLIGHT, from + count); j++) pending.push(layer.run(j));
      await Promise.all(pending);
    }
  };
  await runRange(0, warmup);
  const cpu = process.cpuUsage();
  const started = performance.now();
  await runRange(warmup, events);
  const used = process.cpuUsage(cpu);
  return { cpu: (used.user + used.system) / events, wall: ((performance.now() - started) * 1000) / events };
}

childMain<DispatchTask>(async (task) => {
  const orders = encodedOrders(SYNC_ORDER, task.keys);
  const keys = Array.from({ length: task.keys }, (_, index) => benchKey(index));
  const messages: ActorMessage[] = keys.map((key) => ({ type: SYNC_ORDER.order, payload: { order: SYNC_ORDER.order, [KEY_FIELD]: key, user_id: "u-456" } }));
  const message = (index: number) => messages[index % task.keys] as ActorMessage;
  let sink = 0;

  const runtime = await openBenchRuntime(task.endpoint, benchFamily({ persistence: "none", onSync: () => (sink += 1) }));
  for (const key of keys) await runtime.host.activate(BENCH_KIND, key);
  // Bare XState actors of the same machine, observed like ActorCell observes its actor.
  const machine = benchFamily({ persistence: "none", onSync: () => (sink += 1) }).createMachine(runtime.host.ports);
  const actors: AnyActorRef[] = keys.map((key) => {
    const actor = createActor(machine, { input: { kind: BENCH_KIND, key } });
    actor.subscribe({ next: () => undefined, error: () => undefined });
    return actor.start();
  });
  const actor = (index: number) => actors[index % task.keys] as AnyActorRef;

  // A work-queue stream published to as every JetStream write of the runtime is (a snapshot's KV put is one).
  const jsm = await jetstreamManager(runtime.nc);
  await jsm.streams.add({ name: "bench_orders", subjects: ["bench.orders.>"], retention: RetentionPolicy.Workqueue });
  const signIn = await natsConnectOptions(task.endpoint);
  const traced = await connect({ ...signIn, name: "bench js default" });
  const untraced = await connect({ ...signIn, name: "bench js noAsyncTraces", noAsyncTraces: true });
  registerCleanup(() => traced.close());
  registerCleanup(() => untraced.close());
  const publishOrder = (js: ReturnType<typeof jetstream>) => (i: number) => {
    const id = randomUUID();
    return js.publish(
      `bench.orders.${i % 64}.${BENCH_KIND}.${keys[i % task.keys]}`,
      encodeJson({ id, op: "tell", kind: BENCH_KIND, key: keys[i % task.keys], message: message(i) }),
      { msgID: id },
    );
  };
  const jsEvents = Math.max(1_000, Math.floor(task.events / 5));

  const layers: Layer[] = [
    {
      name: "decode + validate (decodeJson, validatePayload: the entry point's work before routing)",
      run: (i) => {
        const decoded = decodeJson(orders[i % task.keys] as Uint8Array);
        if (decoded.ok && isJsonObject(decoded.value) && validatePayload(SYNC_ORDER.schema, decoded.value).ok) sink += 1;
      },
    },
    {
      name: "XState `snapshot.can(event)` alone (ActorCell.receive asks it before every send)",
      run: (i) => {
        if ((actor(i).getSnapshot() as AnyMachineSnapshot).can(message(i))) sink += 1;
      },
    },
    { name: "XState `actor.send(event)` on a bare actor (one assign + one action)", run: (i) => actor(i).send(message(i)) },
    {
      name: "`ActorHost.tellLocal` → ActorCell.receive (can + send + after-transition work)",
      run: (i) => void runtime.host.tellLocal(BENCH_KIND, keys[i % task.keys] as string, message(i)),
    },
    {
      name: `JetStream publish, awaited, ${IN_FLIGHT.toLocaleString("en")} in flight (each snapshot write is one), nats.js defaults`,
      run: publishOrder(jetstream(traced)),
      async: true,
      events: jsEvents,
    },
    {
      name: "the same JetStream publish on a connection with `noAsyncTraces: true`",
      run: publishOrder(jetstream(untraced)),
      async: true,
      events: jsEvents,
    },
  ];

  const passes = new Map<string, Timing[]>(layers.map((layer) => [layer.name, []]));
  for (let pass = 0; pass < PASSES; pass++) {
    for (const layer of layers) passes.get(layer.name)?.push(await timeLayer(layer, task));
  }
  for (const live of actors) live.stop();
  await traced.close();
  await untraced.close();
  await runtime.close();
  if (sink === 0) throw new Error("nothing was processed");
  const result: DispatchResult = {
    steps: layers.map((layer) => {
      const timings = passes.get(layer.name) ?? [];
      return {
        step: layer.name,
        microsPerEvent: median(timings.map((timing) => timing.cpu)),
        wallMicrosPerEvent: layer.async === true ? median(timings.map((timing) => timing.wall)) : null,
      };
    }),
  };
  return result;
});
