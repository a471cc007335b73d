// The reading of a run's figures, in words. Every number quoted comes from the run itself; the
// explanations name the code the figures point at.
import { MAX_BATCH_RAWS } from "../../actors/inbound/inbound-batch.ts";
import { membershipTiming } from "../../runtime/cluster/membership.ts";
import { DEFAULT_FAILURE_DETECTION_MS } from "../../supervisors/node-config.ts";
import { fastestRun, type KeyFigures, keyFigures, type OrdersFigures, type RequestFigures } from "./figures.ts";
import { type BenchRun, IMPORT_HEAP_BOUND, type PartName, TARGETS } from "./report.ts";
import type { ImapPairRun, ImapResult } from "./results.ts";
import { formatBytes, formatCount, formatMicros, formatMs, formatPercent, formatRatio } from "./stats.ts";

const known = (...numbers: number[]) => numbers.every((value) => Number.isFinite(value));
const count = (warnings: Record<string, number>, pattern: RegExp) =>
  Object.entries(warnings).reduce((total, [message, times]) => total + (pattern.test(message) ? times : 0), 0);

function ordersReading(run: BenchRun, figures: KeyFigures): string[] {
  const { orders, layers } = figures;
  const raw = orders.raw;
  const durable = orders["raw-durable"];
  const entry = orders.entry;
  const actor = orders["actor-none"];
  const snapshot = orders["actor-snapshot"];
  if (raw === undefined || durable === undefined || entry === undefined || actor === undefined) return ["- Orders: not all variants ran, no reading."];
  const out: string[] = [];
  const pacedRatio = actor.pacedPerSecond / raw.pacedPerSecond;
  out.push(
    `- **Orders/s: target ${pacedRatio >= TARGETS.ordersRatio ? "met" : "not met"}, by design.** Through actors, ${formatCount(actor.pacedPerSecond)} orders/s paced (${formatRatio(pacedRatio)} of the raw subscriber's ${formatCount(raw.pacedPerSecond)}/s) and ${formatCount(actor.perSecond)}/s draining a backlog. Every published order crosses JetStream once: the intake stream captures it as it is published, the entry point reads it, hands it to the actor's node and acks it once the actor applied it and its state is saved — so that no order is lost when a node dies. The same path in bare nats.js (a work-queue stream, one consumer that decodes and acks) reaches ${formatCount(durable.pacedPerSecond)}/s paced, itself ${formatRatio(durable.pacedPerSecond / raw.pacedPerSecond)} of a plain subscriber: ${durable.pacedPerSecond / raw.pacedPerSecond < TARGETS.ordersRatio ? `no runtime that stores an order before taking it can reach ${formatRatio(TARGETS.ordersRatio)} of a core-NATS subscriber on this machine, since a JetStream delivery and its ack cost the consumer and the nats-server far more than a core message` : "the design leaves room for the target"}. Against that durable baseline the runtime sustains ${formatRatio(actor.pacedPerSecond / durable.pacedPerSecond)} paced and ${formatRatio(actor.perSecond / durable.perSecond)} on a backlog.`,
    `- **CPU per order** in the consuming process (backlog drains): ${formatMicros(raw.cpuPerOrder)} raw, ${formatMicros(durable.cpuPerOrder)} for the bare durable path, ${formatMicros(entry.cpuPerOrder)} for a node whose entry point only counts (intake consumer and validation), ${formatMicros(actor.cpuPerOrder)} through the node to an actor. So the node's entry point adds ${formatMicros(entry.cpuPerOrder - durable.cpuPerOrder)} to the bare consumer (decoding and validation themselves cost ${formatMicros(layers.decodeValidate)}, table above; the rest is its pulls of at most a quarter of its handlers at a time, each a JetStream request of its own, the handler's promise and the ack), and handing the order to its actor ${formatMicros(actor.cpuPerOrder - entry.cpuPerOrder)} more: the route and the shard's per-key turn (a few promises per order), the cell's checks, XState's transition (${formatMicros(layers.tellLocal)} for \`tellLocal\` alone) and the settling once saved. What is left to gain is spread over those; the JetStream delivery and ack themselves (the bare consumer's ${formatMicros(durable.cpuPerOrder)}) stay.`,
  );
  if (known(layers.jsPublish, layers.jsPublishUntraced, layers.xstateSend, layers.tellLocal)) {
    out.push(
      `- **What a JetStream write costs** (every snapshot write is one; a published order makes none of its own any more). One awaited JetStream publish costs ${formatMicros(layers.jsPublish)} of client CPU with nats.js defaults and ${formatMicros(layers.jsPublishUntraced)} with \`noAsyncTraces: true\` (${formatRatio(layers.jsPublishUntraced / layers.jsPublish)}): by default every request builds a \`RequestError\` and a \`TimeoutError\`, each capturing a stack trace, before it is even sent — the cost runtime/requester.ts avoids for \`nc.request()\`, and which the runtime's connections avoid with \`noAsyncTraces\` (runtime/connection.ts). The actor itself is small next to it: \`ActorCell.receive\` costs ${formatMicros(layers.tellLocal)} per order and a bare XState \`send\` ${formatMicros(layers.xstateSend)}, so the cell around XState adds ${layers.tellLocal > layers.xstateSend ? formatMicros(layers.tellLocal - layers.xstateSend) : "nothing measurable"} (its \`snapshot.can()\` check alone is ${formatMicros(layers.can)}).`,
    );
  }
  const allWarnings = [entry, actor, snapshot].flatMap((value) => (value === undefined ? [] : [value.warnings]));
  const fenced = allWarnings.reduce((total, warnings) => total + count(warnings, /fencing this node off/), 0);
  const handlerFailures = allWarnings.reduce((total, warnings) => total + count(warnings, /order handler failed/), 0);
  if (fenced > 0 || handlerFailures > 0) {
    out.push(
      `- **⚠ Under load the node fences itself off.** ${fenced > 0 ? `It did so ${formatCount(fenced)} time(s) in the actor runs ("fencing this node off"): its membership heartbeat (a KV write from a thread of its own, on a connection of its own) must be confirmed within ${membershipTiming(DEFAULT_FAILURE_DETECTION_MS).fenceAfterMs} ms (60 % of the failure-detection window, \`CALIOPEN_FAILURE_DETECTION_MS\`); on cores saturated by order traffic that thread, or the nats-server's answer, came too late, and the node stopped every shard; the orders wait for redelivery (none is lost). Nothing else was wrong: there is one node and no network fault. ` : ""}${handlerFailures > 0 ? `${formatCount(handlerFailures)} orders failed in the entry point and were dead-lettered.` : ""}`,
    );
  }
  out.push(...livenessReading(run));
  if (snapshot !== undefined) {
    out.push(
      `- **Snapshot persistence**: ${formatCount(snapshot.pacedPerSecond)}/s paced (${formatRatio(snapshot.pacedPerSecond / actor.pacedPerSecond)} of persistence \`none\`); a backlog round made ${formatCount(snapshot.kvWrites)} KV writes for ${formatCount(run.config.orders.keys)} actors — each actor's write loop keeps one write in flight and folds later changes into the next. ${snapshot.lostUpdates === 0 ? "Every published order was reflected exactly once in the stored snapshots once settled: acknowledging an order only after its state is saved, and remembering applied message ids, hold under this load." : `**${snapshot.lostUpdates > 0 ? `${formatCount(snapshot.lostUpdates)} published order(s) were not reflected` : `${formatCount(-snapshot.lostUpdates)} order(s) were applied twice`} in the stored snapshots once the intake stream was empty**, in a scenario where the node fenced itself off ${formatCount(count(snapshot.warnings, /fencing this node off/))} time(s); the bench does not tell which order or why.`}`,
    );
  }
  return out;
}

/** What the heartbeat observer of section 1 saw, against what the node did to itself. */
function livenessReading(run: BenchRun): string[] {
  const watched = run.orders.flatMap((outcome) => (outcome.ok && outcome.value.liveness !== null ? [outcome.value.liveness] : []));
  const phases = watched.flatMap((liveness) => liveness.phases);
  if (phases.length === 0) return [];
  const window = Math.max(...watched.map((liveness) => liveness.windowMs));
  const longestGap = Math.max(...phases.map((phase) => phase.longestGapMs));
  const dead = phases.reduce((total, phase) => total + phase.declaredDead, 0);
  const fenced = phases.reduce((total, phase) => total + phase.fenced, 0);
  const blocked = Math.max(...phases.filter((phase) => phase.phase === "backlog").map((phase) => phase.nodeLoopMaxMs));
  const paced = Math.max(...phases.filter((phase) => phase.phase === "paced").map((phase) => phase.nodeLoopMaxMs));
  const seen = `Another process watching its heartbeats saw at most ${formatMs(longestGap)} between two of them, against a window of ${window} ms: ${dead === 0 ? "no node would have declared it dead" : `**another node would have declared it dead ${formatCount(dead)} time(s)** and taken its shards over`}.`;
  const own =
    fenced === 0
      ? `Its event loop was up to ${formatMs(blocked)} late in backlog rounds (blocked while the publisher runs) and ${formatMs(paced)} in paced ones, and it never fenced itself.`
      : `**It fenced itself ${formatCount(fenced)} time(s)** although ${dead === 0 ? "no other node would have taken it for dead" : "it was only busy"}: it fences once it could not renew its heartbeat for 60 % of the window (${membershipTiming(window).fenceAfterMs} ms). Its heartbeats have a thread of their own, so a main event loop up to ${formatMs(blocked)} late in backlog rounds (the publisher's whole run, its process start included; paced rounds: ${formatMs(paced)}) does not delay them by itself: on these saturated cores the heartbeat thread, or the nats-server's answer, fell behind too. Fencing before the others may declare it dead is the safe order — it stops its shards before anyone may take them — but here a node that was only busy stopped and restarted every shard.`;
  return [`- **Liveness of the saturated node: target ${dead === 0 && fenced === 0 ? "met" : "not met"}.** ${seen} ${own}`];
}

function requestsReading(run: BenchRun, figures: KeyFigures): string[] {
  const raw = figures.requests.raw;
  const actor = figures.requests.actor;
  if (raw === undefined || actor === undefined) return ["- Request/reply: not both variants ran, no reading."];
  const ratio = actor.p50 / raw.p50;
  const clientBusy = (actor.clientCpu * actor.perSecond) / 1e6;
  return [
    `- **Request/reply latency: target ${ratio <= TARGETS.requestP50Ratio ? "met" : "not met"}.** Sequential p50 is ${formatRatio(ratio)} raw (${(actor.p50 * 1000).toFixed(0)} µs vs ${(raw.p50 * 1000).toFixed(0)} µs). Requests do not go through JetStream: the entry point forwards them to the owning node, here itself, in-process, so the actor path adds only CPU (${formatMicros(actor.responderCpu)} vs ${formatMicros(raw.responderCpu)} of responder CPU per request over the run, including the node's own background work) to a round trip made mostly of two loopback hops and event-loop wake-ups. p99 mostly reflects scheduling on a 2-core machine shared by three processes.`,
    `- **Loaded throughput** with ${run.config.requests.inFlight} in flight: ${formatCount(actor.perSecond)} req/s through actors vs ${formatCount(raw.perSecond)} raw (${formatRatio(actor.perSecond / raw.perSecond)}). The client alone spends ${formatMicros(actor.clientCpu)} per request (≈ ${(clientBusy * 100).toFixed(0)} % of a core at that rate): client, responder and nats-server compete for ${run.machine.cpuCount} cores. The 52–59k req/s measured for the shared-inbox technique (runtime/requester.ts) was ${raw.perSecond >= 52_000 ? "reproduced" : "not reproduced here"} with client and responder in separate processes.`,
    ...againstMoleculer(figures, run.machine.cpuCount, run.config.requests.inFlight),
  ];
}

/** What the node's entry point alone costs per request, and what routing to an actor adds. */
function entryShare(figures: KeyFigures): string {
  const { raw, entry, actor } = figures.requests;
  if (raw === undefined || entry === undefined || actor === undefined) return "";
  return `Split by the entry-point row: the node answering from its entry point, without an actor, spends ${formatMicros(entry.responderCpu)} per request (${formatCount(entry.perSecond)} req/s), ${formatMicros(entry.responderCpu - raw.responderCpu)} over the raw responder (the node's decode and validation against the contract, the handler's promise, its bookkeeping, and the node's own background work); routing to the actor adds ${formatMicros(actor.responderCpu - entry.responderCpu)} (the forward, the cell's checks, XState's transition and action). `;
}

/** Where the actor's requests stand against Moleculer's, and what their CPU goes to. */
function againstMoleculer(figures: KeyFigures, cores: number, inFlight: number): string[] {
  const { actor, moleculer } = figures.requests;
  if (actor === undefined || moleculer === undefined) return [];
  const ratio = actor.perSecond / moleculer.perSecond;
  const total = (value: RequestFigures) => value.responderCpu + value.serverCpu + value.clientCpu;
  const busyCores = (value: RequestFigures) => (total(value) * value.perSecond) / 1e6;
  return [
    `- **Against Moleculer: target ${ratio >= 1 ? "met" : "not met"}** (${formatRatio(ratio)} its req/s in the same run). Per request the three processes spend ${formatMicros(total(actor))} of CPU through the actor (responder ${formatMicros(actor.responderCpu)}, nats-server ${formatMicros(actor.serverCpu)}, client ${formatMicros(actor.clientCpu)}) against ${formatMicros(total(moleculer))} for Moleculer (${formatMicros(moleculer.responderCpu)}, ${formatMicros(moleculer.serverCpu)}, ${formatMicros(moleculer.clientCpu)}): Moleculer's caller does more, its responder much less. At the rates measured that keeps ${busyCores(actor).toFixed(2)} of the ${cores} cores busy for the actor and ${busyCores(moleculer).toFixed(2)} for Moleculer: the actor's rate is set less by CPU than by how long each request waits in the responder's single event loop (loaded p50 ${formatMs(actor.loadedP50)} vs ${formatMs(moleculer.loadedP50)}, with ${inFlight} in flight), where one busy process does all of a request's work in one thread. ${entryShare(figures)}A CPU profile of the actor's responder (\`BENCH_PROCESS_PROFILE\`, taken while this was written) puts a fifth of it in XState's \`send\` (the transition and its action${known(figures.layers.xstateSend) ? `; a bare XState send is ${formatMicros(figures.layers.xstateSend)}, section 1` : ""}), a tenth each in garbage collection and socket writes, about a fifth in the entry point and routing (decode, validation against the contract, then against the family's accepted messages, the handler's promises), nats.js's parser and JSON encoding most of the rest. Two cliffs found that way are gone: an object spread followed by more properties (\`{ ...extra, error, message }\`, 0.7 µs on Node 20) in every reply, and a named closure per order (tsx's keepNames makes each a defineProperty). What is left is spread thin.${known(figures.layers.xstateSend) ? ` XState's send alone adds ${formatPercent(figures.layers.xstateSend / (figures.requests.raw?.responderCpu ?? Number.NaN))} to the raw responder's whole CPU per request (${formatMicros(figures.requests.raw?.responderCpu ?? Number.NaN)}) before any routing or check, which is why 0.9× raw is not in sight for requests each handled by an XState actor.` : ""}`,
  ];
}

function memoryReading(run: BenchRun, figures: KeyFigures): string[] {
  const large = run.config.activation.large;
  const actors = figures.activation({ mode: "actors", persistence: "none", count: large });
  const subs = figures.activation({ mode: "subscriptions", count: large });
  const machines = figures.activation({ mode: "machines", count: large });
  const snapshots = figures.activation({ mode: "snapshots", count: large });
  const passivated = figures.activation({ mode: "passivated", count: large });
  const snapshotActors = figures.activation({ mode: "actors", persistence: "snapshot", count: run.config.activation.snapshot });
  if (actors === undefined || subs === undefined || machines === undefined) return ["- Memory: not all populations ran, no reading."];
  const rest = actors.heapPerItem - subs.heapPerItem - machines.heapPerItem;
  const out = [
    `- **Memory per live actor** (just activated, not yet idle): ${formatBytes(actors.heapPerItem)} of heap per actor at ${formatCount(large)} actors (RSS ${formatBytes(actors.rssPerItem)}). The bare XState actor is ${formatBytes(machines.heapPerItem)} of it — every root actor carries its own actor system, scope, mailbox, observers and snapshot object — the nats.js subscription ${formatBytes(subs.heapPerItem)}, and the runtime's own ActorCell and map entries ${formatBytes(rest)}. XState plus the subscription ${machines.heapPerItem + subs.heapPerItem > TARGETS.bytesPerActor ? "already exceed" : "stay within"} ${formatBytes(TARGETS.bytesPerActor)}${machines.heapPerItem + subs.heapPerItem > TARGETS.bytesPerActor ? ", so trimming the cell cannot meet the target" : ""}.`,
  ];
  if (passivated !== undefined) {
    out.push(
      `- **Memory per idle actor: target ${passivated.heapPerItem <= TARGETS.bytesPerActor ? "met" : "not met"}.** A node passivates actors idle for \`CALIOPEN_PASSIVATE_AFTER_MS\` (60 s by default): the XState actor is dropped and only its persisted snapshot, its subscription and the cell stay, until the next message or deadline recreates the machine. Measured: ${formatBytes(passivated.heapPerItem)} of heap per passivated actor at ${formatCount(large)} actors (RSS ${formatBytes(passivated.rssPerItem)}).`,
    );
  } else if (snapshots !== undefined) {
    out.push(
      `- What would meet it: not keeping an XState actor for an idle actor. Its persisted snapshot weighs ${formatBytes(snapshots.heapPerItem)}; a cell that kept only that (plus its subscription and bookkeeping) would weigh about ${formatBytes(subs.heapPerItem + rest + snapshots.heapPerItem)} and recreate the XState actor on its next message.`,
    );
  }
  out.push(
    `- **Activation**: ${formatCount(actors.perSecond)} actors/s (persistence \`none\`, ${formatCount(large)} actors, ${run.config.activation.window} at a time) against ${formatCount(machines.perSecond)}/s for bare XState actors and ${formatCount(subs.perSecond)}/s for bare subscriptions: XState's createActor + start is the larger part, then the subscription and the debug \`transitions\` message every cell publishes on its first state.`,
  );
  if (snapshotActors !== undefined) {
    out.push(
      `- With persistence \`snapshot\`: ${formatCount(snapshotActors.perSecond)} activations/s — each first reads its snapshot from KV (a JetStream request, with the per-request stack traces above) and then writes its first one; all ${formatCount(snapshotActors.count)} were stored ${((snapshotActors.persistedMs ?? Number.NaN) / 1000).toFixed(1)} s after the first activation.`,
    );
  }
  return out;
}

/** Each scenario group's reading, for the groups that ran. */
export function interpretParts(run: BenchRun): Partial<Record<PartName, string[]>> {
  const figures = keyFigures(run);
  return {
    orders: ordersReading(run, figures),
    requests: requestsReading(run, figures),
    activation: memoryReading(run, figures),
    imap: imapReading(run),
    smtp: smtpReading(run),
    push: pushReading(run),
    tls: tlsReading(figures),
  };
}

/** What holds for the whole run. */
export function interpretRun(run: BenchRun): string[] {
  const out: string[] = [];
  if (run.config.quick) out.push("- The last run was a quick one: rounds are short, the JIT is barely warm, and ratios move by tens of percent between runs.");
  if (run.backgroundCores > 0.2) {
    out.push(
      `- Other processes used ${run.backgroundCores.toFixed(2)} cores on average during the last run: absolute rates are lower and noisier than on an idle machine; ratios, measured the same way on both sides, hold better.`,
    );
  }
  return out;
}

function imapReading(run: BenchRun): string[] {
  if (run.imap === null || !run.imap.ok) return run.imap === null ? [] : ["- IMAP fullfetch: the scenario failed, no reading."];
  const r = run.imap.value;
  const ratio = r.node.ms / r.mbsync.ms;
  const nodeCpu = r.node.cpuMs / r.messages;
  const roundTrips = Math.round(r.node.natsMessagesPerMail / 2);
  return [
    `- **IMAP fullfetch: aim ${ratio <= TARGETS.imapRatio ? "met" : "not met"}.** The node imported ${formatCount(r.messages)} messages in ${(r.node.ms / 1000).toFixed(1)} s, ${formatRatio(ratio)} mbsync's ${(r.mbsync.ms / 1000).toFixed(1)} s (aim ≤ ${formatRatio(TARGETS.imapRatio)})${r.mbsyncNoFsync === null ? "" : `, and ${formatRatio(r.node.ms / r.mbsyncNoFsync.ms)} mbsync's ${(r.mbsyncNoFsync.ms / 1000).toFixed(1)} s with \`FSync no\` — the fairer yardstick, since the nats-server does not fsync each write either (JetStream syncs every 2 minutes by default), while mbsync's default fsyncs every message on this machine's shared disk`}. IMAP is not what costs: one imapflow FETCH of the whole mailbox takes ${(r.rawFetch.ms / 1000).toFixed(1)} s, and Dovecot spends ${formatMs(r.node.dovecotCpuMs / r.messages)} of CPU per message serving the node. The node's process is: ${formatMs(nodeCpu)} of CPU per message (busy ${formatPercent(r.node.cpuMs / r.node.ms)} of a core over the run), plus ${formatMs(r.node.natsCpuMs / r.messages)} in the nats-server, against ${formatMs(r.mbsync.cpuMs / r.messages)} for mbsync.`,
    `- **Why**: each message is stored through about ${roundTrips} NATS round trips (${r.node.natsMessagesPerMail.toFixed(1)} messages on the node's connection per mail), and the node is busy all along: CPU, not waiting, sets the pace. The worker stores the raw (actors/store/raw-messages.ts \`putOnce\`: the bytes as one message of a KV bucket and the raw's document, written at once, then the claim of its content for this account) and sends the raws' ids to the user's inbound actor in batches of up to ${MAX_BATCH_RAWS} (\`import_batch\`: one request, one admission, one reply and one snapshot write of the actor per batch), which imports them side by side (actors/mail/inbound-email.ts), each: the raw's document and bytes from the node's memory when this node stored them (actors/store/known-raws.ts; read from the store otherwise), the Message-ID claimed before the body is read (a new mail costs no lookup first; a claim taken names the message already stored), contacts and parents from the actor's memory or one lookup each, then the message and the delivered mark (one compare-and-swap on the revision written, no read). A CPU profile of this import (\`BENCH_CPU_PROFILE=<dir>\` records one) puts about 8 % of the node's CPU in socket writes (nats.js wrote each promise continuation's commands in a write() of their own, twice as many before runtime/nats-write-coalescing.ts), 6 % in garbage collection, a fifth in mailparser and its MIME splitter, 4 % in JSON encoding of the message documents; nats.js's RequestError built for every answered request (5.6 % before runtime/nats-settled-requests.ts) is gone.`,
    `- **What would close the gap**: less CPU per message in the node. What is left is spread thinly: mailparser (a fifth), the socket writes, the JetStream client's per-request bookkeeping, the actor's transitions. The next steps: one KV message per inline raw carrying its document in headers (a write and a read fewer per mail, on the node and on the nats-server), the raw's content claim folded into its document, a leaner MIME parse for the fields a message keeps. Parsing on a worker thread was tried and measured no faster: on this 2-core machine the node, the nats-server and Dovecot already keep about 1.6 cores busy, so only less CPU per message, in the node and the nats-server together, shortens the import.`,
    ...importMemoryReading(r),
    ...importTogetherReading(run),
  ];
}

function smtpReading(run: BenchRun): string[] {
  if (run.smtp === null || !run.smtp.ok) return run.smtp === null ? [] : ["- Inbound SMTP: the scenario failed, no reading."];
  const r = run.smtp.value;
  return [
    `- **Inbound SMTP**: ${formatCount(r.node.perSecond)} messages/s stored end to end against ${formatCount(r.baseline.perSecond)}/s read and dropped by a bare smtp-server (${formatRatio(r.node.perSecond / r.baseline.perSecond)}). The node spends ${formatMs(r.node.cpuMs / r.node.messages)} of CPU and the nats-server ${formatMs(r.node.natsCpuMs / r.node.messages)} per message, against ${formatMs(r.baseline.cpuMs / r.baseline.messages)} for the bare server: the same store path as an IMAP import (the raw, then an \`import_batch\` to the user's inbound actor, which gathers only what arrives at the same moment: with ${r.sessions} sessions each waiting for its 250, small ones) plus the recipient lookup at RCPT TO (\`identities.byIdentifier\`, remembered 5 s per address by actors/mail/local-recipients.ts) and the raw's content claim (\`raws.putOnce\`: one write once the raw is stored, read only when the same content was stored before). Each message is one request to the actor, one transition and one snapshot write there: the SMTP client's wait for its 250, not the store, bounds how much is batched.`,
    `- **The RCPT lookup grows with the store.** \`byIdentifier\` lists the lookups bucket's keys under a wildcard (\`identifier.email.<hash>.*\`) with one STREAM.INFO request (0.2 ms of client CPU, 5.6 ms of nats-server CPU with 20,000 other keys, measured apart), proportional to the bucket, which gains two keys per stored message. The inbound SMTP server now asks it once per address every 5 s, so a burst for one recipient pays it once; a cold address still pays it whole. An exact-key index of who holds an identifier would make it constant.`,
  ];
}

function pushReading(run: BenchRun): string[] {
  if (run.push === null || !run.push.ok) return run.push === null ? [] : ["- Push latency: the scenario failed, no reading."];
  const r = run.push.value;
  return [
    `- **Push latency**: a message APPENDed to the watched mailbox is stored ${formatMs(r.node.median)} later (median; p90 ${formatMs(r.node.p90)}), ${formatRatio(r.node.median / r.idle.median)} the ${formatMs(r.idle.median)} a plain IDLE client takes to see its EXISTS. Most of both is Dovecot's own: it tells IDLE clients about a change about half a second after it happens (its mailbox notifications are delayed by 0.5 s to batch changes). What the node adds is ${formatMs(r.overhead.median)} (median, p90 ${formatMs(r.overhead.p90)}): on the EXISTS its watch connection sends \`mail.arrived\` to the worker, whose sync takes that same connection out of IDLE (DONE), sends NOOP, SEARCHes the UIDs after its cursor, fetches the message and imports it as above, then gives the connection back to IDLE: no connect, no LOGIN, no EXAMINE.`,
  ];
}

/** "+3.2 µs" for a CPU time added per message. */
const added = (after: number, before: number) => `${after >= before ? "+" : "−"}${formatMicros(Math.abs(after - before))}`;

/** Which of the processes' added CPU per message is the largest, in words. */
function largest(deltas: [string, number][]): string {
  const [name, value] = [...deltas].sort((a, b) => b[1] - a[1])[0] ?? ["nothing", 0];
  return `${name} (${added(value, 0)})`;
}

function tlsReading(figures: KeyFigures): string[] {
  const { plain, tls, "tls-role": role } = figures.tls;
  // The same figure on the plain, TLS and TLS + role servers.
  const pick = <T>(select: (entry: NonNullable<typeof plain>) => T | undefined) =>
    [plain, tls, role].map((entry) => (entry === undefined ? undefined : select(entry)));
  const [plainActor, tlsActor, roleActor] = pick((entry) => entry.requests.actor);
  const [plainRaw, tlsRaw] = pick((entry) => entry.requests.raw);
  const [plainOrders, tlsOrders, roleOrders] = pick((entry) => entry.orders["actor-none"]);
  const [plainRawOrders, tlsRawOrders] = pick((entry) => entry.orders.raw);
  if (
    plainActor === undefined ||
    tlsActor === undefined ||
    roleActor === undefined ||
    plainRaw === undefined ||
    tlsRaw === undefined ||
    plainOrders === undefined ||
    tlsOrders === undefined ||
    roleOrders === undefined ||
    plainRawOrders === undefined ||
    tlsRawOrders === undefined
  ) {
    return ["- TLS and credentials: not every scenario ran on every server, no reading."];
  }
  const requestRatios = (over: RequestFigures, under: RequestFigures) =>
    `p50 ${formatRatio(over.p50 / under.p50)}, requests/s ${formatRatio(over.perSecond / under.perSecond)}`;
  const orderRatios = (over: OrdersFigures, under: OrdersFigures) =>
    `orders/s ${formatRatio(over.pacedPerSecond / under.pacedPerSecond)} paced and ${formatRatio(over.perSecond / under.perSecond)} on a backlog`;
  const roleServerFactor = roleActor.serverCpu / tlsActor.serverCpu;
  const out = [
    `- **TLS + node role ÷ plain** (the issue's figure, through an actor): request ${requestRatios(roleActor, plainActor)}; ${orderRatios(roleOrders, plainOrders)}. ${
      roleServerFactor >= 2
        ? `Most of it is the node role, not TLS: TLS alone gives request ${requestRatios(tlsActor, plainActor)} and ${orderRatios(tlsOrders, plainOrders)}, while the role multiplies the nats-server's CPU per request by ${formatRatio(roleServerFactor)} (${formatMicros(tlsActor.serverCpu)} → ${formatMicros(roleActor.serverCpu)}) and per order by ${formatRatio(roleOrders.serverCpuPerOrder / tlsOrders.serverCpuPerOrder)}.`
        : `The node role adds little on top of TLS (the nats-server's CPU per request ${formatRatio(roleServerFactor)} TLS alone's).`
    }`,
    `- **TLS itself** (TLS + nkey ÷ plain): through an actor, request ${requestRatios(tlsActor, plainActor)}, ${orderRatios(tlsOrders, plainOrders)}; for bare nats.js, request ${requestRatios(tlsRaw, plainRaw)}, raw subscriber ${orderRatios(tlsRawOrders, plainRawOrders)}. Per request TLS adds ${added(tlsActor.responderCpu, plainActor.responderCpu)} of CPU in the node, ${added(tlsActor.serverCpu, plainActor.serverCpu)} in the nats-server and ${added(tlsActor.clientCpu, plainActor.clientCpu)} in the client (raw responder: ${added(tlsRaw.responderCpu, plainRaw.responderCpu)}, ${added(tlsRaw.serverCpu, plainRaw.serverCpu)}, ${added(tlsRaw.clientCpu, plainRaw.clientCpu)}); per published order ${added(tlsOrders.cpuPerOrder, plainOrders.cpuPerOrder)} in the node, ${added(tlsOrders.serverCpuPerOrder, plainOrders.serverCpuPerOrder)} in the nats-server, ${added(tlsOrders.publisherCpuPerOrder, plainOrders.publisherCpuPerOrder)} in the publisher (raw subscriber: ${added(tlsRawOrders.cpuPerOrder, plainRawOrders.cpuPerOrder)}). The largest share: ${largest(
      [
        ["the client", tlsActor.clientCpu - plainActor.clientCpu],
        ["the node", tlsActor.responderCpu - plainActor.responderCpu],
        ["the nats-server", tlsActor.serverCpu - plainActor.serverCpu],
      ],
    )} for requests, ${largest([
      ["the node", tlsOrders.cpuPerOrder - plainOrders.cpuPerOrder],
      ["the nats-server", tlsOrders.serverCpuPerOrder - plainOrders.serverCpuPerOrder],
      ["the publisher", tlsOrders.publisherCpuPerOrder - plainOrders.publisherCpuPerOrder],
    ])} for orders.`,
    `- **What TLS costs is CPU per message, not bytes.** The node's sockets carry ${formatBytes(tlsActor.responderIo.bytes - plainActor.responderIo.bytes)} more per request (of ${formatBytes(plainActor.responderIo.bytes)}) and ${formatBytes(tlsOrders.consumerIo.bytes - plainOrders.consumerIo.bytes)} more per order (of ${formatBytes(plainOrders.consumerIo.bytes)}): TLS 1.3 (negotiated here with AES-128-GCM) adds 22 bytes per record, and a record carries whatever one write carries — under load many messages (${plainOrders.consumerIo.syscalls > 0 ? `${formatCount(1 / plainOrders.consumerIo.syscalls)} orders per read or write call on the node's sockets` : "n/a"}). An actor request puts the same messages on the wire as a raw one (${formatBytes(plainActor.responderIo.bytes)} vs ${formatBytes(plainRaw.responderIo.bytes)} per request), so TLS has the same to do for both; a published order costs the node ${formatRatio(plainOrders.consumerIo.bytes / plainRawOrders.consumerIo.bytes)} the bytes a raw subscriber reads (the intake stream's delivery with its JetStream headers, and its ack), and TLS's cost per order grows with them: that is the durable design's traffic, not the actor code. A CPU profile of a node draining 30,000 orders, plain then TLS, taken while this section was written, put TLS's extra CPU in the node about a third in socket writes (the encryption runs inside each \`writev\`, where a plain socket's write is one \`writeBuffer\`), a fifth in nats.js's parser joining messages split across TLS records (which a plain socket delivers whole far more often), a tenth in native code (decryption), the rest spread thinly.`,
  ];
  return out;
}

const MiB = 1024 * 1024;
const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;

function importMemoryReading(r: ImapResult): string[] {
  const m = r.node.memory;
  const idle = m.idle.heapUsed + m.idle.external;
  const growth = m.peakJs - idle;
  const retained = r.node.retained === undefined ? null : r.node.retained.heapUsed + r.node.retained.external - idle;
  const grows = retained === null ? null : retained > TARGETS.importGrowthMiB * MiB;
  const boundMet = growth <= TARGETS.importHeapMiB * MiB;
  const average = r.bytes / r.messages;
  const { inFlightRaws, parsers, youngGeneration, cachesAndSlack } = IMPORT_HEAP_BOUND;
  const growthText =
    grows === null ? "whether it grows was not measured by that run" : grows ? "it GROWS with the mailbox" : "it does not grow with the mailbox";
  return [
    `- **The node's heap during the import: bound ${boundMet ? "met" : "not met"}; ${growthText}.** Idle, with the worker started, the node holds ${mib(idle)} (heapUsed + external, after full GCs; RSS ${mib(m.idle.rss)}); importing ${formatCount(r.messages)} messages it peaked at ${mib(m.peakJs)}, ${mib(growth)} over idle (heapUsed alone ${mib(m.peak.heapUsed)}, external ${mib(m.peak.external)}, RSS ${mib(m.peak.rss)}). ${retained === null ? "" : `Once the import was over and full GCs had run, it held ${mib(retained + idle)}, ${mib(retained)} more than idle: a node that kept each imported raw's bytes would hold ${mib(r.bytes)} more, one that kept ${formatBytes(1024)} per message ${mib(r.messages * 1024)}. `}Just after a major GC during the import it held ${mib(m.firstQuarterAfterGcJs)} at most in the first quarter of the run and ${mib(m.lastQuarterAfterGcJs)} in the last: what was alive then includes the work in flight, which the settled figure after the import does not. The timed peaks (${mib(m.firstQuarterPeakJs)} in the first quarter, ${mib(m.lastQuarterPeakJs)} in the last) are garbage waiting for the next major GC: ${mib(m.peakJs - Math.max(m.firstQuarterAfterGcJs, m.lastQuarterAfterGcJs))} of the peak was not alive, and V8 sizes the old space to collect it only when it fills.`,
    `- **The bound, ${TARGETS.importHeapMiB} MiB over idle, is what the design should let a node hold whatever the mailbox**: the worker's ${2 * MAX_BATCH_RAWS} messages in flight (two import batches) at up to 1 MiB each (${inFlightRaws} MiB); the inbound actor's 16 parsers of a batch, each holding a raw read back and its parsed parts, about twice the raw (${parsers} MiB); V8's young generation, where all this garbage waits for a scavenge (${youngGeneration} MiB); the node's bounded caches and slack (${cachesAndSlack} MiB). This corpus's mails average ${formatBytes(average)}, so its ${2 * MAX_BATCH_RAWS} in flight weigh only ${mib(2 * MAX_BATCH_RAWS * average)}: ${boundMet ? `the peak kept under the bound${growth > 0.75 * TARGETS.importHeapMiB * MiB ? ` but used ${formatPercent(growth / (TARGETS.importHeapMiB * MiB))} of it with small mails, the rest being old-space garbage the bound does not count; with 1 MiB mails the same garbage would come on top of ${inFlightRaws} MiB in flight, so it would likely be exceeded — a corpus of large mails would tell` : ""}` : "the peak is over the bound even with small mails: old-space garbage the bound does not count"}.`,
  ];
}

function importTogetherReading(run: BenchRun): string[] {
  if (run.imap === null || !run.imap.ok) return [];
  const pair = run.imap.value.pair;
  if (!pair.ok) return ["- Two mailboxes at once: the runs failed, no reading."];
  const oneNode = fastestRun(pair.oneNode);
  const twoNodes = fastestRun(pair.twoNodes);
  if (oneNode === undefined || twoNodes === undefined) return [];
  const times = (runs: ImapPairRun[]) => runs.map((value) => `${(value.ms / 1000).toFixed(1)} s`).join(", ");
  const cores = run.machine.cpuCount;
  const ratio = twoNodes.ms / oneNode.ms;
  const busy = (value: ImapPairRun) => (value.nodeCpuMs.reduce((sum, cpu) => sum + cpu, 0) + value.natsCpuMs + value.dovecotCpuMs) / value.ms;
  const cpuTotal = (value: ImapPairRun) => value.nodeCpuMs.reduce((sum, cpu) => sum + cpu, 0) + value.natsCpuMs + value.dovecotCpuMs;
  // With every core busy the run cannot be shorter than its CPU work spread over all of them.
  const floor = cpuTotal(twoNodes) / cores / oneNode.ms;
  const perNode = (value: ImapPairRun) =>
    value.nodeCpuMs.map((cpu) => `${formatMs(cpu / value.messages)} (busy ${formatPercent(cpu / value.ms)})`).join(" and ");
  const saturated = busy(twoNodes) >= 0.85 * cores;
  return [
    `- **Two nodes for two mailboxes: aim ${ratio <= TARGETS.imapTwoNodesRatio ? "met" : "not met"}.** One node imported both mailboxes (${formatCount(oneNode.messages)} messages) in ${(oneNode.ms / 1000).toFixed(1)} s at best (rounds: ${times(pair.oneNode)}); two nodes, one mailbox each, in ${(twoNodes.ms / 1000).toFixed(1)} s (rounds: ${times(pair.twoNodes)}): ${formatRatio(ratio)} (aim ≤ ${formatRatio(TARGETS.imapTwoNodesRatio)}). CPU per message: the one node ${perNode(oneNode)}, the nats-server ${formatMs(oneNode.natsCpuMs / oneNode.messages)} (busy ${formatPercent(oneNode.natsCpuMs / oneNode.ms)}), Dovecot ${formatMs(oneNode.dovecotCpuMs / oneNode.messages)}; with two nodes ${perNode(twoNodes)}, the nats-server ${formatMs(twoNodes.natsCpuMs / twoNodes.messages)} (busy ${formatPercent(twoNodes.natsCpuMs / twoNodes.ms)}), Dovecot ${formatMs(twoNodes.dovecotCpuMs / twoNodes.messages)}.`,
    ...roundSpread(pair.oneNode, "one node"),
    ...roundSpread(pair.twoNodes, "two nodes"),
    `- **What limits it: ${saturated ? "the machine's cores" : "not the cores alone"}.** This machine has ${cores} cores, shared by the nodes, the nats-server and Dovecot. The one-node run kept ${busy(oneNode).toFixed(2)} cores busy, the two-node run ${busy(twoNodes).toFixed(2)}. ${saturated ? `Two nodes cannot each have a core while the nats-server takes ${formatPercent(twoNodes.natsCpuMs / twoNodes.ms)} of one: the two-node run's CPU work (${(cpuTotal(twoNodes) / 1000).toFixed(1)} s in all) spread over all ${cores} cores could not take less than ${formatRatio(floor)} of the one-node run's time, so ${formatRatio(TARGETS.imapTwoNodesRatio)} ${floor > TARGETS.imapTwoNodesRatio ? "is out of reach on this machine" : "would need every core busy all the time"}; with the nats-server and Dovecot on cores of their own, each node would have one to itself.` : `The cores were not all busy, so the rest is waiting: the awaited NATS round trips of each import (above), which a second node does not shorten.`} Work per message ${cpuTotal(twoNodes) / twoNodes.messages > (1.1 * cpuTotal(oneNode)) / oneNode.messages ? "grows" : "does not grow"} with the second node: ${formatMs(cpuTotal(oneNode) / oneNode.messages)} of CPU per message in all with one node, ${formatMs(cpuTotal(twoNodes) / twoNodes.messages)} with two${cpuTotal(twoNodes) / twoNodes.messages > (1.1 * cpuTotal(oneNode)) / oneNode.messages ? `; the nodes make ${(sum(twoNodes.nodeSyscalls) / twoNodes.messages).toFixed(1)} read/write system calls per message between them against ${(sum(oneNode.nodeSyscalls) / oneNode.messages).toFixed(1)} for the one node, the nats-server ${(twoNodes.natsSyscalls / twoNodes.messages).toFixed(1)} against ${(oneNode.natsSyscalls / oneNode.messages).toFixed(1)} — ${sum(twoNodes.nodeSyscalls) / twoNodes.messages > 1.1 * (sum(oneNode.nodeSyscalls) / oneNode.messages) ? "each node, with half the traffic, carries fewer messages per socket write and read, and the server pays for each" : "not more socket calls per message, so the extra CPU is not fewer messages per write; more likely two processes contending for two cores with the nats-server and Dovecot (context switches, cold caches)"}` : ""}.`,
  ];
}

const sum = (values: number[]) => values.reduce((total, value) => total + value, 0);

/** Rounds of the same run far apart: says so, with the CPU per message that moved with the time. */
function roundSpread(runs: ImapPairRun[], label: string): string[] {
  const fastest = fastestRun(runs);
  const slowest = runs.reduce<ImapPairRun | undefined>((worst, run) => (worst === undefined || run.ms > worst.ms ? run : worst), undefined);
  if (fastest === undefined || slowest === undefined || slowest.ms < 1.2 * fastest.ms) return [];
  const cpu = (run: ImapPairRun) => sum(run.nodeCpuMs) / run.messages;
  const busy = (run: ImapPairRun) => sum(run.nodeCpuMs) / run.ms;
  return [
    `- **The ${label} rounds are far apart**: ${(fastest.ms / 1000).toFixed(1)} s (round ${runs.indexOf(fastest) + 1}) and ${(slowest.ms / 1000).toFixed(1)} s (round ${runs.indexOf(slowest) + 1}), with ${formatMs(cpu(fastest))} and ${formatMs(cpu(slowest))} of node CPU per message at ${formatPercent(busy(fastest))} and ${formatPercent(busy(slowest))} of a core: the slow round did more work per message, not less of it per second. Its traffic per message grew with it — ${(sum(fastest.nodeSyscalls) / fastest.messages).toFixed(1)} and ${(sum(slowest.nodeSyscalls) / slowest.messages).toFixed(1)} read/write system calls per message in the node processes, ${(fastest.natsSyscalls / fastest.messages).toFixed(1)} and ${(slowest.natsSyscalls / slowest.messages).toFixed(1)} in the nats-server (CPU ${formatMs(fastest.natsCpuMs / fastest.messages)} and ${formatMs(slowest.natsCpuMs / slowest.messages)}) — so more NATS exchanges per message, not a slower process; this bench does not tell which (retries, or lookups that grow with the store, which holds ${formatCount(slowest.messages)} more messages at each run). The ratio takes the fastest round of each.`,
  ];
}
