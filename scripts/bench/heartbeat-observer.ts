// Scenario 1's liveness witness: a process of its own, whose event loop stays idle while the node's is
// saturated, watching the cluster's heartbeat bucket as another node's Membership does (updates first,
// then the current entry, revisions sorting out the overlap). For the measured node it tells, phase by
// phase, the heartbeats seen and the gaps between them by this process's monotonic clock, held to the
// runtime's own rule (silentTooLong): a gap that reaches the window is a time another node would have
// declared the node dead. Gaps are stricter than Membership's 100 ms checks, which could miss a
// window reached by a few ms.
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { Kvm } from "@nats-io/kv";
import { MEMBERSHIP_BUCKET, membershipTiming, silentTooLong } from "../../runtime/cluster/membership.ts";
import { decodeJson, isJsonObject } from "../../runtime/json.ts";
import { Subjects } from "../../runtime/subjects.ts";
import { connectBench } from "./bench-connection.ts";
import { childMain } from "./child-protocol.ts";
import { registerCleanup } from "./cleanup.ts";
import type { HeartbeatObservation, HeartbeatObserverTask, HeartbeatsSeen, OrdersPhase } from "./results.ts";

const PHASES: readonly OrdersPhase[] = ["warm-up", "backlog", "paced"];
const isPhase = (value: unknown): value is OrdersPhase => PHASES.some((phase) => phase === value);

childMain<HeartbeatObserverTask>(async (task) => {
  const nc = await connectBench(task.endpoint, "bench heartbeat observer");
  registerCleanup(() => nc.close());
  const timing = membershipTiming(task.failureDetectionMs);
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();

  const phases: (HeartbeatsSeen & { startedAt: number })[] = [];
  let current: (HeartbeatsSeen & { startedAt: number }) | null = null;
  let lastSeen: number | null = null;
  let lastRevision = 0;
  // A gap counts in the phase in which it ends; before the first phase (node start-up) only the beat's time is kept.
  const silence = (now: number) => {
    if (current === null || lastSeen === null) return;
    const gap = now - lastSeen;
    current.longestGapMs = Math.max(current.longestGapMs, gap);
    if (silentTooLong(gap, timing)) current.declaredDead += 1;
  };
  const observe = (key: string, operation: string, revision: number) => {
    if (key !== task.node || revision <= lastRevision) return;
    lastRevision = revision;
    // A deletion (the node leaving) is no heartbeat: the silence after it keeps growing.
    if (operation !== "PUT") return;
    const now = performance.now();
    silence(now);
    if (current !== null) current.heartbeats += 1;
    lastSeen = now;
  };

  let stopped: () => void = () => undefined;
  const stop = new Promise<void>((resolve) => (stopped = resolve));
  const finish = (now: number) => {
    // The silence since the last beat counts too: a node that stopped beating for good must show.
    silence(now);
    if (current !== null) current.ms = now - current.startedAt;
  };
  nc.subscribe(task.controlSubject, {
    callback: (err, msg) => {
      if (err !== null) return;
      const now = performance.now();
      const decoded = decodeJson(msg.data);
      const body = decoded.ok && isJsonObject(decoded.value) ? decoded.value : {};
      if (isPhase(body.phase)) {
        if (current !== null) current.ms = now - current.startedAt;
        current = { phase: body.phase, ms: 0, heartbeats: 0, longestGapMs: 0, declaredDead: 0, startedAt: now };
        phases.push(current);
      } else if (body.stop === true) {
        finish(now);
        stopped();
      }
    },
  });

  const kv = await new Kvm(nc).open(new Subjects("").resource(MEMBERSHIP_BUCKET));
  const watcher = await kv.watch({ include: "updates" });
  void (async () => {
    for await (const entry of watcher) observe(entry.key, entry.operation, entry.revision);
  })().catch(() => undefined);
  const entry = await kv.get(task.node);
  if (entry !== null) observe(entry.key, entry.operation, entry.revision);
  nc.publish(task.readySubject);
  await nc.flush();

  await stop;
  watcher.stop();
  loop.disable();
  await nc.close();
  const result: HeartbeatObservation = {
    windowMs: timing.deadAfterMs,
    phases: phases.map(({ startedAt: _, ...seen }) => seen),
    observerLoopMaxMs: loop.max / 1e6,
  };
  return result;
});
