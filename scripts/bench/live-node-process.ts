// A node of the live-accounts scenario in a process of its own (run with --expose-gc): the Caliopen
// services with IDLE push on, as `npm start` wires them, on the scenario's nats-server. BENCH_LIVE_NODE holds
// its settings. What only this process can measure it gives out: its memory after a full GC and the
// event loop's delays since the previous ask (answering `LIVE_MEMORY_SUBJECT.<node id>`), and each
// warning its runtime logs, with its time, as a `warn <epoch ms> <message>` line on stdout (a fenced node
// must be seen in the phase where it happened).
import { monitorEventLoopDelay } from "node:perf_hooks";
import { encodeJson } from "../../runtime/json.ts";
import { LIVE_MEMORY_SUBJECT, type LiveNodeTask, type NodeProbe } from "./live-cluster.ts";
import { startMailNode } from "./mail-bench.ts";
import { settledMemory } from "./memory-probe.ts";

const WARNING_CHECK_MS = 100;

const task = JSON.parse(process.env.BENCH_LIVE_NODE ?? "null") as LiveNodeTask | null;
if (task === null) throw new Error("BENCH_LIVE_NODE is not set");
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();
const mail = await startMailNode(task.endpoint, {
  smtp: false,
  push: true,
  admit: task.admit,
  secretKey: task.secretKey,
  nodeId: task.nodeId,
  ...(task.failureDetectionMs !== undefined && { failureDetectionMs: task.failureDetectionMs }),
});
mail.nc.subscribe(`${LIVE_MEMORY_SUBJECT}.${task.nodeId}`, {
  callback: (err, msg) => {
    if (err !== null) return;
    const loop = { loopDelayP99Ms: loopDelay.percentile(99) / 1e6, loopDelayMaxMs: loopDelay.max / 1e6 };
    loopDelay.reset();
    void settledMemory().then((memory) => msg.respond(encodeJson({ ...memory, ...loop } satisfies NodeProbe)));
  },
});
const reported: Record<string, number> = {};
const reportWarnings = () => {
  for (const [message, times] of Object.entries(mail.warnings())) {
    for (let n = reported[message] ?? 0; n < times; n++) process.stdout.write(`warn ${Date.now()} ${message}\n`);
    reported[message] = times;
  }
};
const warningTimer = setInterval(reportWarnings, WARNING_CHECK_MS);
process.stdout.write("ready\n");
process.on(
  "SIGTERM",
  () =>
    void mail.stop().then(() => {
      clearInterval(warningTimer);
      reportWarnings();
      process.exit(0);
    }),
);
