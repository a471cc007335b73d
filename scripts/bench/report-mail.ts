// The mail sections of the report (5–7): a first IMAP import against mbsync, with the node's memory and two
// mailboxes at once on one node then two; inbound SMTP against a bare server; push latency against IDLE.
import type { BenchRun } from "./bench-run.ts";
import { TARGETS } from "./bench-targets.ts";
import { fastestRun } from "./figures.ts";
import { backgroundLine, failureText, MiB, mib, perMessage, seconds, signedMib, type Verdict, warningLines } from "./report-format.ts";
import type { ImapPairRun, ImapResult, ImapRun, PushLatency, SmtpRun } from "./results.ts";
import { formatBytes, formatCount, formatMs, formatPercent, formatRatio } from "./stats.ts";

const NODE_WARNINGS = "Warnings and errors the node logged during the run:";

/** Scenario 5: a whole mailbox imported by the node, against mbsync and a bare imapflow FETCH. */
export function imapSection(run: BenchRun, verdicts: Verdict[]): string[] {
  const lines = ["## 5. IMAP: a first import of a whole mailbox (fullfetch) vs mbsync", ""];
  const outcome = run.imap;
  if (outcome === null) return [];
  if (!outcome.ok) {
    verdicts.push({ target: `IMAP fullfetch ≤ ${TARGETS.imapRatio} × mbsync's time (aim of the issue)`, measured: "the scenario failed", met: null });
    return [...lines, failureText(outcome.error), ...backgroundLine([outcome])];
  }
  const r = outcome.value;
  const ratio = r.node.ms / r.mbsync.ms;
  verdicts.push({
    target: `IMAP fullfetch of ${formatCount(r.messages)} messages ≤ ${TARGETS.imapRatio} × mbsync's time (aim of the issue)`,
    measured: `${formatRatio(ratio)} (${seconds(r.node.ms)} vs ${seconds(r.mbsync.ms)})`,
    met: ratio <= TARGETS.imapRatio,
  });
  const row = (label: string, value: ImapRun, cpuLabel: string) =>
    `| ${label} | ${seconds(value.ms)} | ${formatCount(value.perSecond)} | ${formatRatio(value.ms / r.mbsync.ms)} | ${formatMs(value.cpuMs / r.messages)} ${cpuLabel} | ${formatMs(value.dovecotCpuMs / r.messages)} |`;
  const kinds = `${formatCount(r.kinds.plain)} text/plain, ${formatCount(r.kinds.alternative)} multipart/alternative (text + HTML), ${formatCount(r.kinds.mixed)} multipart/mixed with a base64 attachment`;
  const steady = r.node.rateSamples.length > 2 ? r.node.rateSamples[r.node.rateSamples.length - 1] : Number.NaN;
  lines.push(
    `A private Dovecot (scripts/local-servers/dovecot.ts) holds ${formatCount(r.messages)} messages in one INBOX, ${formatBytes(r.bytes)} in all (${formatBytes(r.bytes / r.messages)} on average, 2–20 KiB each; ${kinds}; scripts/bench/mail-corpus.ts, the same bytes every run). **Filling**: the Maildir files are written straight into \`<dovecot dir>/mail/<user>/Maildir/new/\` as the \`mail\` user (${seconds(r.fill.writeMs)}), then one STATUS and SELECT let Dovecot index them (${seconds(r.fill.indexMs)}); APPEND over one imapflow connection, timed on ${formatCount(r.fill.append.count)} of the same messages, runs at ${formatCount(r.fill.append.perSecond)}/s, so it would have taken ${seconds((r.messages * 1000) / r.fill.append.perSecond)}.`,
    `Every reader below reads the same mailbox, after one plain imapflow FETCH of everything warmed Dovecot's index and cache and the page cache. **mbsync** (${r.mbsyncVersion}, /usr/bin/mbsync): an \`.mbsyncrc\` with an IMAPAccount on 127.0.0.1 (\`SSLType None\`, \`AuthMechs LOGIN\`), a MaildirStore, a Channel \`Far :far:INBOX\` / \`Near :near:INBOX\` with \`Sync Pull\`, \`Create Near\`, \`SyncState *\`, into a fresh local Maildir; its exit code must be 0 and ${formatCount(r.messages)} files must be there. It runs with its default \`FSync yes\` (the baseline) and again with \`FSync no\`.`,
    `**The node**: a real node (supervisors/caliopen-services.ts on the scenario's nats-server, push off) with a remote IMAP identity pointing at that mailbox; \`add_worker\` on \`imap_worker\`, then, once the worker runs, \`fullfetch\` on \`IMAPfetcher\`. **Completion signal**: the worker's context lists the fullfetch in its \`history\` — \`syncMailbox\` has returned, so every message was fetched, stored as a raw and its import batch (\`import_batch\` to the user's inbound actor) was answered — with \`done = total = ${formatCount(r.messages)}\` and \`failed = 0\`; then the user's keys in the messages bucket are counted (${formatCount(r.node.stored)}). Polled every 20 ms.`,
    "",
    "| Reader | time | messages/s | ÷ mbsync time | CPU / message (reader) | Dovecot CPU / message |",
    "|---|---:|---:|---:|---:|---:|",
    row("imapflow, one UID FETCH (FLAGS BODY.PEEK[]) of everything, dropped (the transport's floor)", r.rawFetch, "(imapflow)"),
    row("**mbsync** (defaults: FSync yes) — baseline", r.mbsync, "(mbsync)"),
    ...(r.mbsyncNoFsync === null ? [] : [row("mbsync, FSync no", r.mbsyncNoFsync, "(mbsync)")]),
    row("**node**: `add_worker` + `fullfetch` → stored messages", r.node, "(node process)"),
    "",
    `The node: connected and fetching ${r.node.connectedMs === null ? "(not seen)" : `${formatMs(r.node.connectedMs)}`} after \`fullfetch\`; ${formatCount(r.node.perSecond)} messages/s over the whole run${Number.isFinite(steady) ? ` (cumulative rate at the last one-second sample: ${formatCount(steady as number)}/s)` : ""}; its process used ${seconds(r.node.cpuMs)} of CPU (${formatPercent(r.node.cpuMs / r.node.ms)} of one core) and the nats-server ${seconds(r.node.natsCpuMs)} (${perMessage(r.node.natsCpuMs, r.messages)} per message); the node's NATS connection carried ${r.node.natsMessagesPerMail.toFixed(1)} messages per imported mail (requests, replies and JetStream acks).`,
    ...warningLines([{ label: "node", warnings: r.warnings }], NODE_WARNINGS),
    ...importMemoryLines(r, verdicts),
    ...importTogetherLines(r, verdicts),
    ...backgroundLine([outcome]),
  );
  return lines;
}

/** The in-process node's memory during its import of the first mailbox, and the two targets on it. */
function importMemoryLines(r: ImapResult, verdicts: Verdict[]): string[] {
  const m = r.node.memory;
  const js = (sample: { heapUsed: number; external: number }) => sample.heapUsed + sample.external;
  const growth = m.peakJs - js(m.idle);
  const retained = r.node.retained === undefined ? null : js(r.node.retained) - js(m.idle);
  verdicts.push({
    target: `Node heap (heapUsed + external) during a ${formatCount(r.messages)}-message import ≤ ${TARGETS.importHeapMiB} MiB over the idle node's`,
    measured: `${signedMib(growth)} at the peak (${mib(m.peakJs)} vs ${mib(js(m.idle))} idle)`,
    met: growth <= TARGETS.importHeapMiB * MiB,
  });
  verdicts.push({
    target: `… and it does not grow with the mailbox: what the node still holds once the import is over (settled by full GCs) ≤ the idle node's + ${TARGETS.importGrowthMiB} MiB`,
    measured:
      r.node.retained === undefined || retained === null
        ? "not measured by that run"
        : `${signedMib(retained)} (${mib(js(r.node.retained))} vs ${mib(js(m.idle))} idle)`,
    met: retained === null ? null : retained <= TARGETS.importGrowthMiB * MiB,
  });
  const row = (label: string, idle: number, peak: number, quarters: string) =>
    `| ${label} | ${mib(idle)} | ${mib(peak)} | ${signedMib(peak - idle)} | ${quarters} |`;
  return [
    "",
    "### The node's memory during the import",
    "",
    `The node of the table above runs in the scenario's process, which does nothing else meanwhile but poll the worker. **Idle**: \`process.memoryUsage()\` with the worker started, after four full GCs (\`--expose-gc\`). **During the import**: sampled every ${m.everyMs} ms as it is, garbage included (${formatCount(m.samples)} samples); each peak is the highest sample of that figure. *external* includes *arrayBuffers* (the Buffers: raws on their way); *heapUsed + external* is what the JavaScript side holds, the figure of the targets. *First* and *last quarter*: the highest value in the first and the last 25 % of the run's time. Since V8 lets garbage pile up in the old space until a major GC, the timed peaks mostly say when the last one ran. The samples taken just after each major GC (a \`gc\` performance entry; ${m.majorGcs} major GCs during the run) still hold the import's work in flight (batches, parsers, the young generation). **Once the import is over**: \`process.memoryUsage()\` again after four full GCs, as for the idle figure: what the node kept of the import, which would grow with the mailbox if it kept anything per message.`,
    "",
    "| Figure | idle | peak | peak − idle | peak in first / last quarter |",
    "|---|---:|---:|---:|---:|",
    row("heapUsed", m.idle.heapUsed, m.peak.heapUsed, "—"),
    row("external (incl. arrayBuffers)", m.idle.external, m.peak.external, "—"),
    row("arrayBuffers", m.idle.arrayBuffers, m.peak.arrayBuffers, "—"),
    row("RSS", m.idle.rss, m.peak.rss, "—"),
    row("**heapUsed + external**", js(m.idle), m.peakJs, `${mib(m.firstQuarterPeakJs)} / ${mib(m.lastQuarterPeakJs)}`),
    `| heapUsed + external just after a major GC (in-flight work included) | ${mib(js(m.idle))} | | | ${mib(m.firstQuarterAfterGcJs)} / ${mib(m.lastQuarterAfterGcJs)} |`,
    ...(r.node.retained === undefined
      ? []
      : [
          `| **heapUsed + external once the import is over, settled by full GCs** | ${mib(js(m.idle))} | ${mib(js(r.node.retained))} | ${signedMib(js(r.node.retained) - js(m.idle))} | — |`,
        ]),
  ];
}

/** Two mailboxes at once, one node then two, and the target on their ratio. */
function importTogetherLines(r: ImapResult, verdicts: Verdict[]): string[] {
  const target = `Two nodes importing two mailboxes at once ≤ ${TARGETS.imapTwoNodesRatio} × one node's time for both`;
  const head = ["", "### Two mailboxes at once: one node, then two", ""];
  if (!r.pair.ok) {
    verdicts.push({ target, measured: "the runs failed", met: null });
    return [...head, failureText(r.pair.error)];
  }
  const oneNode = fastestRun(r.pair.oneNode);
  const twoNodes = fastestRun(r.pair.twoNodes);
  if (oneNode === undefined || twoNodes === undefined) {
    verdicts.push({ target, measured: "no round ran", met: null });
    return head;
  }
  const ratio = twoNodes.ms / oneNode.ms;
  verdicts.push({ target, measured: `${formatRatio(ratio)} (${seconds(twoNodes.ms)} vs ${seconds(oneNode.ms)})`, met: ratio <= TARGETS.imapTwoNodesRatio });
  const row = (label: string, value: ImapPairRun) => {
    const perNode = value.nodeCpuMs.map((cpu) => `${perMessage(cpu, value.messages)} (${formatPercent(cpu / value.ms)})`).join(" + ");
    const placed = value.placement.map((entry) => `${entry.worker} / ${entry.inbound}`).join("; ");
    const calls = (count: number) => (count / value.messages).toFixed(1);
    return `| ${label} | ${seconds(value.ms)} | ${value.mailboxMs.map(seconds).join(", ")} | ${formatCount(value.perSecond)} | ${perNode} | ${perMessage(value.natsCpuMs, value.messages)} (${formatPercent(value.natsCpuMs / value.ms)}) | ${perMessage(value.dovecotCpuMs, value.messages)} (${formatPercent(value.dovecotCpuMs / value.ms)}) | ${value.nodeSyscalls.map(calls).join(" + ")} | ${calls(value.natsSyscalls)} | ${placed} |`;
  };
  return [
    ...head,
    `A second Dovecot user holds a second mailbox of the same ${formatCount(r.messages)} corpus messages (other Message-IDs), read once beforehand like the first. Each run starts fresh node processes (scripts/bench/mail-node-process.ts: the same services, push off, ${formatCount(oneNode.messages)} messages in all) on the scenario's nats-server, creates two users with one remote IMAP identity each (one per mailbox), sends \`add_worker\` for both and, once the workers run, both \`fullfetch\` orders at once; time until both identities' \`last_sync\` is written (the worker's last step, once every import batch was answered), polled every 50 ms, then each user's stored messages are counted (${formatCount(r.messages)} each, or the run fails). **Two nodes**: the users and identities are drawn until each mailbox's imap worker (keyed by identity) and its user's inbound actor (keyed by user) hash to shards the same node owns (rendezvous over the two node ids), one mailbox per node; \`caliopen.debug.actors\` must show the workers on those nodes before the clock starts and the inbound actors there once done. The one-node run goes first, so the two-node run works against a store holding ${formatCount(oneNode.messages)} more messages. *CPU / message*: each process's CPU over all ${formatCount(oneNode.messages)} messages of the run (and its share of one core over the run); *syscalls / message*: read and write system calls (/proc/<pid>/io) per message — the node's NATS and IMAP sockets, the nats-server's client sockets and its JetStream files. ${r.pair.oneNode.length} rounds of each, alternated (one node, two nodes, one node, …); the fastest of each, in bold, make the ratio.`,
    "",
    "| Run | time | each mailbox | messages/s | node CPU / message, per node process | nats-server CPU / message | Dovecot CPU / message | node syscalls / message, per process | nats-server syscalls / message | where (worker / inbound actor, per mailbox) |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ...r.pair.oneNode.map((value, index) => row(`${value === oneNode ? "**one node**" : "one node"}, both mailboxes (round ${index + 1})`, value)),
    ...r.pair.twoNodes.map((value, index) => row(`${value === twoNodes ? "**two nodes**" : "two nodes"}, one mailbox each (round ${index + 1})`, value)),
    `| **two ÷ one** | ${formatRatio(ratio)} | | ${formatRatio(twoNodes.perSecond / oneNode.perSecond)} | | | | | | |`,
    ...warningLines(
      [
        ...r.pair.oneNode.map((value, index) => ({ label: `one node, round ${index + 1}`, warnings: value.warnings })),
        ...r.pair.twoNodes.map((value, index) => ({ label: `two nodes, round ${index + 1}`, warnings: value.warnings })),
      ],
      "Warnings and errors the node processes logged during these runs:",
    ),
  ];
}

function smtpRow(label: string, value: SmtpRun, baseline: SmtpRun): string {
  return `| ${label} | ${formatCount(value.messages)} | ${seconds(value.ms)} | ${formatCount(value.perSecond)} | ${formatRatio(value.perSecond / baseline.perSecond)} | ${formatMs(value.cpuMs / value.messages)} | ${Number.isFinite(value.natsCpuMs) && value.natsCpuMs > 0 ? formatMs(value.natsCpuMs / value.messages) : "—"} | ${formatMs(value.loadCpuMs / value.messages)} |`;
}

/** Scenario 6: inbound SMTP through the node against a bare smtp-server. */
export function smtpSection(run: BenchRun): string[] {
  const outcome = run.smtp;
  if (outcome === null) return [];
  const lines = ["## 6. Inbound SMTP: messages/s end to end vs a bare smtp-server", ""];
  if (!outcome.ok) return [...lines, failureText(outcome.error), ...backgroundLine([outcome])];
  const r = outcome.value;
  lines.push(
    `Postfix's \`smtp-source\` (/usr/sbin/smtp-source, C) sends ${formatCount(r.node.messages)} messages over ${r.sessions} parallel SMTP sessions, each keeping its connection (\`-s ${r.sessions} -m ${r.node.messages} -l ${r.size} -d\`: ${formatBytes(r.size)} of body plus smtp-source's From/To/Date/Message-Id/Subject headers, a unique Message-Id each), after an untimed warm-up of ${formatCount(r.warmup)} to the same receiver. Time: from starting smtp-source until it exits 0 (it stops at the first reply that is not 2xx).`,
    `**Baseline**: a bare \`smtp-server\` with the node's settings (no AUTH, no STARTTLS, no reverse lookup) that reads each message to its end and drops it. **The node**: its inbound SMTP server (\`CALIOPEN_SMTP\`, actors/mail/inbound-smtp-server.ts) with one local recipient (a user's local identity); per message it looks the recipient up (RCPT), stores the raw once by content, has the user's inbound actor import it (\`import_batch\`, as \`process_inbound\` on \`inboundSMTP\` would) and answers 250 only when that reply came back. **Completion signal**: smtp-source exiting 0, i.e. 250 for every message, i.e. every message stored; the user's keys in the messages bucket are counted afterwards (${formatCount(r.node.received)} new).`,
    "",
    "| Receiver | messages | time | messages/s | ÷ baseline | receiver CPU / message | nats-server CPU / message | smtp-source CPU / message |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
    smtpRow("bare smtp-server, read and drop — baseline", r.baseline, r.baseline),
    smtpRow("**node**: inbound SMTP → raw → inbound actor → stored message", r.node, r.baseline),
    ...warningLines([{ label: "node", warnings: r.warnings }], NODE_WARNINGS),
    ...backgroundLine([outcome]),
  );
  return lines;
}

function latencyRow(label: string, value: PushLatency): string {
  return `| ${label} | ${formatMs(value.median)} | ${formatMs(value.p90)} | ${formatMs(value.max)} | ${value.missed} |`;
}

/** Scenario 7: push latency, APPEND → stored, against a plain IDLE client. */
export function pushSection(run: BenchRun): string[] {
  const outcome = run.push;
  if (outcome === null) return [];
  const lines = ["## 7. Push: from an APPEND to the stored message vs a raw IDLE client", ""];
  if (!outcome.ok) return [...lines, failureText(outcome.error), ...backgroundLine([outcome])];
  const r = outcome.value;
  lines.push(
    `A node runs the imap worker of a remote identity with IDLE push on (actors/imap/account-connection.ts: the account's one connection kept open on INBOX in IDLE; an EXISTS makes the worker run an incremental sync on that same connection). Another client APPENDs ${r.appends} messages into that INBOX, one at a time, ${seconds(r.spacingMs)} apart; each is timed from just before its APPEND is sent. **Baseline**: a plain imapflow client, in a process of its own, IDLEing on the same INBOX: until it gets the EXISTS (the same APPENDs, observed at the same time). **The node** (**completion signal**): until the message's document appears in the messages bucket, seen by a KV watch on the user's keys and matched by Message-ID.`,
    "",
    "| Observer | median | p90 | max | missed |",
    "|---|---:|---:|---:|---:|",
    latencyRow("APPEND command, until Dovecot's OK", r.append),
    latencyRow("plain imapflow client in IDLE: EXISTS — baseline", r.idle),
    latencyRow("**node**: message stored", r.node),
    latencyRow("node − IDLE client, per APPEND (what the node adds)", r.overhead),
    `| **node ÷ IDLE client** | ${formatRatio(r.node.median / r.idle.median)} | ${formatRatio(r.node.p90 / r.idle.p90)} | ${formatRatio(r.node.max / r.idle.max)} | |`,
    ...warningLines([{ label: "node", warnings: r.warnings }], NODE_WARNINGS),
    ...backgroundLine([outcome]),
  );
  return lines;
}
