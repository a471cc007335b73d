// Scenario 3: activate N actors through ActorHost.activate and weigh them once idle. Control modes
// split the figure: N plain NATS subscriptions (the actor's mailbox), N bare XState actors, and N
// persisted snapshots alone (what an idle actor would weigh if its XState actor were not kept).
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { type AnyActorRef, createActor } from "xstate";
import type { ActorPorts } from "../../runtime/actor-family.ts";
import { silentLogger } from "../../runtime/logger.ts";
import type { NatsEndpoint } from "../../runtime/nats-endpoint.ts";
import { Subjects } from "../../runtime/subjects.ts";
import { connectBench } from "./bench-connection.ts";
import { BENCH_KIND, benchFamily } from "./bench-family.ts";
import { benchKey } from "./bench-payloads.ts";
import { openBenchRuntime } from "./bench-runtime.ts";
import { childMain } from "./child-protocol.ts";
import { registerCleanup } from "./cleanup.ts";
import { settledMemory } from "./memory-probe.ts";
import type { MemorySample } from "./memory-sampler.ts";
import type { ActivationResult, ActivationTask } from "./results.ts";
import { epochNow, rate } from "./stats.ts";

interface Population {
  /** Creates the item for `key`; resolves when it is live. */
  create(key: string): Promise<void> | void;
  /** Removes it again (used after the warm-up). */
  release(key: string): Promise<void> | void;
  /** After the last create: the server has every subscription. */
  ready(): Promise<void>;
  /** Before weighing: what an idle population does (actors: nothing, or passivate). */
  idle?(): void;
  /** Snapshot actors: remembers how many records the bucket holds before the timed activations. */
  markStored(): Promise<void>;
  /** Snapshot actors: resolves when `count` more snapshots are stored than at markStored(). */
  persisted(count: number): Promise<void>;
  dispose(): Promise<void>;
}

async function actors(endpoint: NatsEndpoint, persistence: "none" | "snapshot", passivate = false): Promise<Population> {
  const runtime = await openBenchRuntime(endpoint, benchFamily({ persistence }));
  const jsm = await jetstreamManager(runtime.nc);
  const stored = async () => (await jsm.streams.info(runtime.snapshotStream)).state.messages;
  let storedBefore = 0;
  return {
    create: async (key) => void (await runtime.host.activate(BENCH_KIND, key)),
    release: async (key) => void (await runtime.host.stop(BENCH_KIND, key)),
    ready: () => runtime.nc.flush(),
    ...(passivate && { idle: () => void runtime.host.passivateIdle(0) }),
    markStored: async () => {
      storedBefore = persistence === "none" ? 0 : await stored();
    },
    persisted: async (count) => {
      if (persistence === "none") return;
      const deadline = Date.now() + 120_000;
      while ((await stored()) < storedBefore + count) {
        if (Date.now() > deadline) throw new Error("first snapshots not all written within 120 s");
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    dispose: () => runtime.close(),
  };
}

// What the actor's mailbox alone costs: one subscription with a callback on the same subject.
async function subscriptions(endpoint: NatsEndpoint): Promise<Population> {
  const nc: NatsConnection = await connectBench(endpoint, "bench subscriptions");
  registerCleanup(() => nc.close());
  const subjects = new Subjects("");
  const subs = new Map<string, Subscription>();
  return {
    create: (key) => void subs.set(key, nc.subscribe(subjects.actor(BENCH_KIND, key), { callback: () => undefined })),
    release: (key) => {
      subs.get(key)?.unsubscribe();
      subs.delete(key);
    },
    ready: () => nc.flush(),
    markStored: async () => undefined,
    persisted: async () => undefined,
    dispose: () => nc.close(),
  };
}

function idleMachine() {
  // Idle actors never reach their ports: these are only there to build the machine.
  const idlePorts: ActorPorts = {
    logger: silentLogger(),
    publish: () => undefined,
    reply: () => undefined,
    request: async () => undefined,
    deadLetter: () => undefined,
  };
  return benchFamily({ persistence: "none" }).createMachine(idlePorts);
}

// What the XState actor alone costs: the same machine, started and observed as ActorCell does.
async function machines(): Promise<Population> {
  const machine = idleMachine();
  const live = new Map<string, AnyActorRef>();
  return {
    create: (key) => {
      const actor = createActor(machine, { input: { kind: BENCH_KIND, key } });
      actor.subscribe({ next: () => undefined, error: () => undefined });
      live.set(key, actor.start());
    },
    release: (key) => {
      live.get(key)?.stop();
      live.delete(key);
    },
    ready: async () => undefined,
    markStored: async () => undefined,
    persisted: async () => undefined,
    dispose: async () => {
      for (const actor of live.values()) actor.stop();
    },
  };
}

// What an idle actor's state weighs once its XState actor is gone: its persisted snapshot.
async function snapshots(): Promise<Population> {
  const machine = idleMachine();
  const kept = new Map<string, unknown>();
  return {
    create: (key) => {
      const actor = createActor(machine, { input: { kind: BENCH_KIND, key } }).start();
      kept.set(key, actor.getPersistedSnapshot());
      actor.stop();
    },
    release: (key) => void kept.delete(key),
    ready: async () => undefined,
    markStored: async () => undefined,
    persisted: async () => undefined,
    dispose: async () => kept.clear(),
  };
}

/** Runs `create` over every key with at most `window` in flight. */
async function createAll(population: Population, keys: string[], window: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < keys.length) await population.create(keys[next++] as string);
  };
  await Promise.all(Array.from({ length: Math.min(window, keys.length) }, worker));
}

function perItem(before: MemorySample, after: MemorySample, field: keyof MemorySample, count: number): number {
  return (after[field] - before[field]) / count;
}

function populationFor(task: ActivationTask): Promise<Population> {
  if (task.mode === "machines") return machines();
  if (task.mode === "snapshots") return snapshots();
  if (task.endpoint === null) throw new Error(`${task.mode} needs a NATS server`);
  if (task.mode === "actors" || task.mode === "passivated") return actors(task.endpoint, task.persistence, task.mode === "passivated");
  return subscriptions(task.endpoint);
}

childMain<ActivationTask>(async (task) => {
  const population = await populationFor(task);
  // Warm the JIT on other keys first, so the rate is not mostly interpreter time at small N.
  const warmKeys = Array.from({ length: Math.min(2_000, Math.ceil(task.count / 5)) }, (_, index) => `warm-${index}`);
  await createAll(population, warmKeys, task.window);
  await population.ready();
  for (const key of warmKeys) await population.release(key);
  await population.ready();

  const keys = Array.from({ length: task.count }, (_, index) => benchKey(index));
  await population.markStored();
  const before = await settledMemory();
  const started = epochNow();
  await createAll(population, keys, task.window);
  await population.ready();
  const elapsedMs = epochNow() - started;
  await population.persisted(task.count);
  const persistedMs = task.persistence === "snapshot" && task.mode === "actors" ? epochNow() - started : null;
  population.idle?.();
  const after = await settledMemory();
  await population.dispose();
  const result: ActivationResult = {
    mode: task.mode,
    persistence: task.persistence,
    count: task.count,
    elapsedMs,
    perSecond: rate(task.count, elapsedMs),
    persistedMs,
    before,
    after,
    heapPerItem: perItem(before, after, "heapUsed", task.count),
    externalPerItem: perItem(before, after, "external", task.count),
    rssPerItem: perItem(before, after, "rss", task.count),
  };
  return result;
});
