// Scenario 2, responder side: `deliver` requests answered either by a raw responder (decode + reply)
// or by an actor on a node: entry point (decode, validate), routeToActor (forward to the owning node,
// here this one), ActorCell, machine, ports.reply to the requester's inbox; or, as the same-stack peer,
// by a Moleculer broker's action, called by a Moleculer broker (moleculer-broker.ts, moleculer-load.ts).
import { decodeJson, encodeJson, isJsonObject } from "../../runtime/json.ts";
import type { NatsEndpoint } from "../../runtime/nats-endpoint.ts";
import { ok } from "../../runtime/reply.ts";
import { connectBench } from "./bench-connection.ts";
import { startBenchNode } from "./bench-node.ts";
import { DELIVER_ORDER, encodedOrders, KEY_FIELD, SYNC_ORDER } from "./bench-payloads.ts";
import { childMain, runChild } from "./child-protocol.ts";
import { registerCleanup } from "./cleanup.ts";
import { startCpuMeter } from "./cpu-meter.ts";
import { perMessage, startIoMeter } from "./io-meter.ts";
import { ProgressProbe } from "./progress-probe.ts";
import type { RequestLoadResult, RequestLoadTask, RequestsResult, RequestsTask } from "./results.ts";

interface Responder {
  warnings(): Record<string, number>;
  close(): Promise<void>;
}

// The baseline answers with the same reply body the actor sends.
async function rawResponder(endpoint: NatsEndpoint): Promise<Responder> {
  const nc = await connectBench(endpoint, "bench raw responder");
  registerCleanup(() => nc.close());
  nc.subscribe(DELIVER_ORDER.subject, {
    queue: DELIVER_ORDER.queue,
    callback: (err, msg) => {
      if (err !== null || msg.reply === undefined || msg.reply === "") return;
      const decoded = decodeJson(msg.data);
      if (!decoded.ok || !isJsonObject(decoded.value)) return;
      nc.publish(msg.reply, encodeJson(ok("delivered", { message_id: decoded.value.message_id, remote_id: decoded.value[KEY_FIELD] })));
    },
  });
  await nc.flush();
  return { warnings: () => ({}), close: () => nc.close() };
}

async function actorResponder(endpoint: NatsEndpoint, keys: number): Promise<Responder> {
  // persistence "none": `deliver` changes nothing in the context, so a snapshot family would only add
  // a serialisation per event to find there is nothing to write.
  const probe = new ProgressProbe();
  const bench = await startBenchNode(endpoint, { persistence: "none", onSync: () => probe.tick() });
  // A forwarded request needs a running actor: one `sync` per key starts them all.
  const starter = await connectBench(endpoint, "bench actor starter");
  for (const payload of encodedOrders(SYNC_ORDER, keys)) starter.publish(SYNC_ORDER.subject, payload);
  await starter.flush();
  await starter.close();
  await probe.until(keys, 60_000);
  return { warnings: bench.warnings, close: bench.stop };
}

// The node's entry point alone: the same decode and validation against the contract, then a handler
// that answers at once with the actor's reply, without routing, forwarding or an actor.
async function entryResponder(endpoint: NatsEndpoint): Promise<Responder> {
  const bench = await startBenchNode(endpoint, {
    persistence: "none",
    onSync: () => undefined,
    deliverHandler: (payload) => ok("delivered", { message_id: payload.message_id, remote_id: payload[KEY_FIELD] }),
  });
  return { warnings: bench.warnings, close: bench.stop };
}

async function moleculerResponder(endpoint: NatsEndpoint): Promise<Responder> {
  // Loaded for this row only: the other rows' processes do not load Moleculer.
  const { startMoleculerBroker } = await import("./moleculer-broker.ts");
  const { stop } = await startMoleculerBroker(endpoint, "responder");
  return { warnings: () => ({}), close: stop };
}

function startResponder(task: RequestsTask): Promise<Responder> {
  switch (task.variant) {
    case "raw":
      return rawResponder(task.endpoint);
    case "entry":
      return entryResponder(task.endpoint);
    case "actor":
      return actorResponder(task.endpoint, task.keys);
    case "moleculer":
      return moleculerResponder(task.endpoint);
  }
}

childMain<RequestsTask>(async (task) => {
  const responder = await startResponder(task);
  const load: RequestLoadTask = {
    kind: "request",
    endpoint: task.endpoint,
    keys: task.keys,
    warmup: task.warmup,
    sequential: task.sequential,
    concurrent: task.concurrent,
    inFlight: task.inFlight,
    rounds: task.rounds,
    timeoutMs: 10_000,
  };
  const meter = startCpuMeter(task.serverPid);
  const responderIo = startIoMeter("self");
  // Moleculer answers only Moleculer: its row's client is a broker too, through the same rounds.
  const client = task.variant === "moleculer" ? "moleculer-load.ts" : "load-generator.ts";
  const { requests, ...figures } = await runChild<RequestLoadResult>(client, load, { timeoutMs: 300_000 });
  const cpu = meter();
  const io = responderIo();
  const warnings = responder.warnings();
  await responder.close();
  const result: RequestsResult = {
    variant: task.variant,
    ...figures,
    // Includes the load generator's start-up, when neither side does anything.
    responderCpuMicrosPerRequest: (cpu.selfMs * 1000) / requests,
    serverCpuMicrosPerRequest: (cpu.otherMs * 1000) / requests,
    responderIoPerRequest: perMessage(io, requests),
    warnings,
  };
  return result;
});
