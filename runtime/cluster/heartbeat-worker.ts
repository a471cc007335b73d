// The heartbeat thread: writes this node's heartbeat into the membership bucket every `heartbeatMs` on a
// NATS connection of its own, and records in shared memory when the server confirmed one. It beats only
// while the main thread says its node may serve and the main thread itself shows signs of life.
import { Writable } from "node:stream";
import { parentPort, workerData } from "node:worker_threads";
import { Kvm } from "@nats-io/kv";
import { connectToNats } from "../connection.ts";
import { encodeJson } from "../json.ts";
import { createLogger } from "../logger.ts";
import { type FromHeartbeatThread, type HeartbeatSetup, monotonicMs, SharedHeartbeatClock, type ToHeartbeatThread } from "./heartbeat-protocol.ts";

const port = parentPort;
if (port === null) throw new Error("heartbeat-worker.ts runs as a worker thread (see heartbeat-thread.ts)");
// Sent by this node's own main thread (heartbeat-thread.ts), structured-cloned: the one place it is typed.
const setup: HeartbeatSetup = workerData;
const post = (message: FromHeartbeatThread) => port.postMessage(message);
const logger = createLogger({
  level: "debug",
  format: "json",
  destination: new Writable({
    write(chunk: Buffer, _encoding, done) {
      post({ type: "log", line: chunk.toString("utf8") });
      done();
    },
  }),
});
const clock = new SharedHeartbeatClock(setup.clock);

let leaving = false;
let stopped = false;
let beat = 0;
let inFlight: Promise<void> | null = null;
let stallReported = false;

try {
  const nc = await connectToNats({ endpoint: setup.endpoint, name: setup.connectionName, logger });
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === "disconnect") post({ type: "connection", up: false });
      else if (status.type === "reconnect") post({ type: "connection", up: true });
    }
  })();
  const kv = await new Kvm(nc).open(setup.bucket);

  const put = async (): Promise<void> => {
    const sentAt = monotonicMs();
    beat += 1;
    try {
      await kv.put(setup.nodeId, encodeJson({ node: setup.nodeId, leaving, beat, info: setup.info }));
      clock.confirmBeat(sentAt, setup.fenceAfterMs);
    } catch (err) {
      logger.warn({ err: (err as Error).message }, "heartbeat failed");
    }
  };

  const tick = (): Promise<void> => {
    if (inFlight !== null || stopped || !clock.canServe()) return inFlight ?? Promise.resolve();
    const stalledFor = monotonicMs() - clock.mainAliveAt();
    if (stalledFor > setup.mainStallLimitMs) {
      if (!stallReported) logger.error({ stalledForMs: Math.round(stalledFor) }, "main thread stuck: heartbeats stop so that other nodes take its actors over");
      stallReported = true;
      return Promise.resolve();
    }
    stallReported = false;
    inFlight = put().finally(() => (inFlight = null));
    return inFlight;
  };

  await tick();
  const timer = setInterval(() => void tick(), setup.heartbeatMs);
  port.on("message", (message: ToHeartbeatThread) => {
    void (async () => {
      if (message.type === "leave") {
        leaving = true;
        await inFlight;
        await tick();
        post({ type: "left" });
      } else {
        stopped = true;
        clearInterval(timer);
        await inFlight;
        await nc.close().catch(() => undefined);
        post({ type: "stopped" });
        port.close();
      }
    })();
  });
  post({ type: "ready" });
} catch (err) {
  post({ type: "failed", reason: (err as Error).message });
  port.close();
}
