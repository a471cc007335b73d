// Scenario 5: a first IMAP import of a whole mailbox. A private Dovecot mailbox is filled with N
// realistic messages; `mbsync` (isync) copies it to a local Maildir — the baseline — then a real node
// running the Caliopen services imports it: `add_worker` then `fullfetch` for a remote identity pointing
// at that mailbox, timed until the worker records the run as finished (every message fetched, stored as
// a raw, and imported by the user's inbound actor in batches, whose replies the worker awaits).
import { execFileSync, spawn } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IMAP_KIND } from "../../actors/imap/imap-worker.ts";
import type { ImapWorkerContext } from "../../actors/imap/imap-worker-state.ts";
import { encodeJson } from "../../runtime/json.ts";
import { childMain } from "./child-protocol.ts";
import { reapedChildrenCpuMs, startCpuMeter } from "./cpu-meter.ts";
import { importTogether } from "./imap-pair.ts";
import {
  appendRate,
  type BenchDovecot,
  benchUser,
  fetchAll,
  fillMaildir,
  imapIdentity,
  newSecretKey,
  PASSWORD,
  profilePhase,
  retireIdentity,
  startBenchDovecot,
  startMailNode,
  writeConfig,
} from "./mail-bench.ts";
import { settledMemory } from "./memory-probe.ts";
import { startMemorySampler } from "./memory-sampler.ts";
import type { ImapResult, ImapRun, ImapTask } from "./results.ts";

const LOGIN = "bench";
/** The second mailbox, for two imports at once: the same corpus size, other Message-IDs. */
const SECOND_LOGIN = "bench2";
/** Rounds of each two-mailbox run (one node, two nodes). */
const PAIR_ROUNDS = 2;
const MBSYNC = "/usr/bin/mbsync";

async function countFiles(dir: string): Promise<number> {
  let total = 0;
  for (const sub of ["new", "cur"]) total += (await readdir(join(dir, sub)).catch(() => [])).length;
  return total;
}

/** mbsync pulling INBOX into a fresh Maildir; fails unless it exits 0 with every message there. */
async function runMbsync(dovecot: BenchDovecot, messages: number, fsync: boolean): Promise<ImapRun & { files: number }> {
  const dir = await mkdtemp(join(tmpdir(), "caliopen-bench-mbsync-"));
  try {
    // SyncState * keeps mbsync's state in the local Maildir, so that no run sees another's (~/.mbsync).
    const rc = await writeConfig(
      dir,
      "mbsyncrc",
      `${fsync ? "" : "FSync no\n\n"}IMAPAccount bench
Host 127.0.0.1
Port ${dovecot.port}
User ${LOGIN}
Pass ${PASSWORD}
SSLType None
AuthMechs LOGIN

IMAPStore far
Account bench

MaildirStore near
Path ${dir}/near/
Inbox ${dir}/near/INBOX

Channel bench
Far :far:INBOX
Near :near:INBOX
Sync Pull
Create Near
SyncState *
`,
    );
    await mkdir(join(dir, "near"));
    const cpuBefore = reapedChildrenCpuMs();
    const dovecotBefore = dovecot.cpuMs();
    const started = performance.now();
    const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
      const child = spawn(MBSYNC, ["-c", rc, "bench"], { stdio: ["ignore", "pipe", "pipe"] });
      let output = "";
      child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
      child.once("error", reject);
      child.once("close", (exitCode) => resolve({ code: exitCode, output }));
    });
    const ms = performance.now() - started;
    const cpuMs = reapedChildrenCpuMs() - cpuBefore;
    const dovecotCpuMs = dovecot.cpuMs() - dovecotBefore;
    const files = await countFiles(join(dir, "near", "INBOX"));
    if (code !== 0) throw new Error(`mbsync exited with ${code}: ${output.trim().slice(-500)}`);
    if (files !== messages) throw new Error(`mbsync left ${files} files, ${messages} expected: ${output.trim().slice(-500)}`);
    return { ms, perSecond: (messages * 1000) / ms, cpuMs, dovecotCpuMs, files };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const progress = (message: string) => process.stderr.write(`bench:   imap: ${message}\n`);

const stateText = (state: unknown) => JSON.stringify(state ?? "");

childMain<ImapTask>(async (task): Promise<ImapResult> => {
  const dovecot = await startBenchDovecot();
  // One deployment: every node of the scenario, and its store, share the key the first one records.
  const secretKey = newSecretKey();
  try {
    const single = await importAlone(task, dovecot, secretKey);
    // The second mailbox read once too, so that both start from Dovecot's warm caches.
    const warm = await dovecot.client(SECOND_LOGIN, PASSWORD);
    await fetchAll(warm);
    await warm.logout().catch(() => warm.close());
    let pair: ImapResult["pair"];
    try {
      // Alternated rounds, so that a change of load on the machine touches both; the faster of each counts.
      const oneNode = [];
      const twoNodes = [];
      for (let round = 1; round <= PAIR_ROUNDS; round++) {
        oneNode.push(await importTogether(task, dovecot, secretKey, [LOGIN, SECOND_LOGIN], 1, `one-r${round}`));
        progress(`one node, two mailboxes, round ${round}: ${((oneNode.at(-1)?.ms ?? Number.NaN) / 1000).toFixed(1)} s`);
        twoNodes.push(await importTogether(task, dovecot, secretKey, [LOGIN, SECOND_LOGIN], 2, `two-r${round}`));
        progress(`two nodes, two mailboxes, round ${round}: ${((twoNodes.at(-1)?.ms ?? Number.NaN) / 1000).toFixed(1)} s`);
      }
      pair = { ok: true, oneNode, twoNodes };
    } catch (err) {
      progress(`two mailboxes at once: FAILED: ${(err as Error).message}`);
      pair = { ok: false, error: (err as Error).message };
    }
    return { ...single, pair };
  } finally {
    await dovecot.stop();
  }
});

/** Baselines and the in-process node's import of the first mailbox. */
async function importAlone(task: ImapTask, dovecot: BenchDovecot, secretKey: string): Promise<Omit<ImapResult, "pair">> {
  const corpus = { to: `${LOGIN}@remote.test`, tag: `imap-${Date.now()}` };
  const filled = await fillMaildir(dovecot, LOGIN, task.messages, corpus);
  progress(
    `${task.messages} messages (${(filled.bytes / 1024 / 1024).toFixed(1)} MiB) written in ${(filled.writeMs / 1000).toFixed(1)} s, indexed in ${(filled.indexMs / 1000).toFixed(1)} s`,
  );
  const second = await fillMaildir(dovecot, SECOND_LOGIN, task.messages, { to: `${SECOND_LOGIN}@remote.test`, tag: `${corpus.tag}-2` });
  progress(`second mailbox: ${task.messages} messages written in ${(second.writeMs / 1000).toFixed(1)} s`);
  const append = await appendRate(dovecot, `${LOGIN}-append`, task.appendSample, { ...corpus, tag: `${corpus.tag}-append` });

  // One plain client reads everything once: the transport's floor, and every later reader finds Dovecot's
  // index, cache and the files in the page cache alike.
  const client = await dovecot.client(LOGIN, PASSWORD);
  const rawMeter = startCpuMeter(null);
  const rawDovecot = dovecot.cpuMs();
  const rawStarted = performance.now();
  const fetched = await fetchAll(client);
  const rawMs = performance.now() - rawStarted;
  const rawFetch: ImapRun = { ms: rawMs, perSecond: (fetched.messages * 1000) / rawMs, cpuMs: rawMeter().selfMs, dovecotCpuMs: dovecot.cpuMs() - rawDovecot };
  await client.logout().catch(() => client.close());
  if (fetched.messages !== task.messages) throw new Error(`imapflow fetched ${fetched.messages} messages, ${task.messages} expected`);
  progress(`imapflow fetch of every message: ${(rawMs / 1000).toFixed(1)} s`);

  const mbsync = await runMbsync(dovecot, task.messages, true);
  progress(`mbsync: ${(mbsync.ms / 1000).toFixed(1)} s`);
  const mbsyncNoFsync = await runMbsync(dovecot, task.messages, false);
  progress(`mbsync, FSync no: ${(mbsyncNoFsync.ms / 1000).toFixed(1)} s`);

  // The node: push off, so that nothing but the fullfetch talks to Dovecot.
  const mail = await startMailNode(task.endpoint, { smtp: false, push: false, admit: [dovecot.server], secretKey });
  let retire = async (): Promise<void> => undefined;
  try {
    const { userId } = await benchUser(mail.store, "bench");
    const identity = await imapIdentity(mail.store, userId, dovecot, LOGIN);
    retire = () => retireIdentity(mail.store, userId, identity.identity_id);
    const order = { remote_id: identity.identity_id, user_id: userId };
    const cell = () => mail.node.host.get(IMAP_KIND, identity.identity_id);
    mail.nc.publish("imap_worker", encodeJson({ order: "add_worker", ...order }));
    const activated = performance.now();
    while (cell() === undefined) {
      if (performance.now() - activated > 30_000) throw new Error("the imap worker did not start within 30 s of add_worker");
      await new Promise((resolve) => setTimeout(resolve, 10));
    }

    // The idle node, settled by full GCs, then sampled as is (garbage included) during the import.
    const idleMemory = await settledMemory();
    const stopProfile = await profilePhase("imap-node");
    const natsBefore = mail.node.nc.stats();
    const meter = startCpuMeter(task.serverPid);
    const dovecotBefore = dovecot.cpuMs();
    const stopMemory = startMemorySampler(idleMemory);
    const started = performance.now();
    const startedIso = new Date().toISOString();
    mail.nc.publish("IMAPfetcher", encodeJson({ order: "fullfetch", ...order }));
    let connectedMs: number | null = null;
    const rateSamples: number[] = [];
    let nextSample = started + 1_000;
    const deadline = started + Math.max(120_000, task.messages * 60);
    let finished: ImapWorkerContext["history"][number] | undefined;
    for (;;) {
      const now = performance.now();
      const current = cell();
      const context = current?.inspect().context as ImapWorkerContext | undefined;
      const state = stateText(current?.summary().state);
      if (connectedMs === null && state.includes('"fetching"')) connectedMs = now - started;
      if (now >= nextSample) {
        rateSamples.push(((context?.progress?.done ?? 0) * 1000) / (now - started));
        nextSample += 1_000;
      }
      // Completion: the run is in the worker's history, i.e. syncMailbox returned (every import replied)
      // and the identity's last_sync was written.
      finished = context?.history.find((run) => run.mode === "fullfetch" && run.started_at >= startedIso);
      if (finished !== undefined) break;
      if (state.includes("backingOff") || state.includes("disabled")) throw new Error(`the fullfetch failed: ${context?.last_error?.message ?? state}`);
      if (now > deadline) throw new Error(`fullfetch not finished after ${((now - started) / 1000).toFixed(0)} s: ${JSON.stringify(context?.progress)}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const ms = performance.now() - started;
    const memory = stopMemory();
    const cpu = meter();
    const dovecotCpuMs = dovecot.cpuMs() - dovecotBefore;
    await stopProfile();
    const retained = await settledMemory();
    const natsAfter = mail.node.nc.stats();
    const natsMessages = natsAfter.outMsgs - natsBefore.outMsgs + natsAfter.inMsgs - natsBefore.inMsgs;
    const stored = await mail.storedMessages(userId);
    progress(`node fullfetch: ${(ms / 1000).toFixed(1)} s, ${finished.done}/${finished.total} done, ${finished.failed} failed, ${stored} stored`);
    if (finished.total !== task.messages || finished.done !== task.messages || finished.failed !== 0 || stored !== task.messages) {
      throw new Error(
        `fullfetch finished with ${finished.done}/${finished.total} done, ${finished.failed} failed and ${stored} messages stored; ${task.messages} expected`,
      );
    }
    return {
      messages: task.messages,
      bytes: filled.bytes,
      kinds: filled.kinds,
      mbsyncVersion: execFileSync(MBSYNC, ["--version"], { encoding: "utf8" }).trim(),
      fill: { method: "maildir", writeMs: filled.writeMs, indexMs: filled.indexMs, append },
      rawFetch,
      mbsync,
      mbsyncNoFsync,
      node: {
        ms,
        perSecond: (task.messages * 1000) / ms,
        cpuMs: cpu.selfMs,
        natsCpuMs: cpu.otherMs,
        dovecotCpuMs,
        connectedMs,
        done: finished.done,
        total: finished.total,
        failed: finished.failed,
        stored,
        rateSamples,
        natsMessagesPerMail: natsMessages / task.messages,
        memory,
        retained,
      },
      warnings: mail.warnings(),
    };
  } finally {
    await retire();
    await mail.stop();
  }
}
