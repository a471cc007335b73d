// Scenario 7: push latency. A node runs an imap worker with IDLE push on (its new-mail watch); another
// client APPENDs messages into the watched Dovecot mailbox, one at a time, spaced out. For each APPEND,
// from just before it is sent: (a) when a plain imapflow client IDLEing on the same mailbox, in a process
// of its own, sees the EXISTS — the baseline, raw IDLE — and (b) when the node has stored the message,
// seen as its document appearing in the messages bucket (a KV watch on the user's keys, matched by
// Message-ID).
import { spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { Kvm } from "@nats-io/kv";
import { IMAP_KIND } from "../../actors/imap/imap-worker.ts";
import type { ImapWorkerContext } from "../../actors/imap/imap-worker-state.ts";
import type { Message } from "../../actors/store/model.ts";
import { decodeJson, encodeJson } from "../../runtime/json.ts";
import { childMain } from "./child-protocol.ts";
import { registerCleanup } from "./cleanup.ts";
import { benchUser, imapIdentity, PASSWORD, startBenchDovecot, startMailNode } from "./mail-bench.ts";
import { corpusMessage, corpusMessageId, crlf } from "./mail-corpus.ts";
import type { PushResult, PushTask } from "./results.ts";
import { epochNow, latencySummary } from "./stats.ts";

const LOGIN = "bench";
const BENCH_DIR = fileURLToPath(new URL(".", import.meta.url));
/** How long one APPEND may take to be seen before it counts as missed. */
const SEEN_WITHIN_MS = 15_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The baseline IDLE client in its own process; resolves once it IDLEs. */
async function startIdleWatcher(port: number): Promise<{ exists: number[]; stop(): void }> {
  const child = spawn(process.execPath, ["--import", "tsx", join(BENCH_DIR, "idle-watcher.ts")], {
    env: { ...process.env, BENCH_TASK: JSON.stringify({ host: "127.0.0.1", port, user: LOGIN, pass: PASSWORD }) },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const stop = () => void (child.exitCode === null && child.kill("SIGKILL"));
  const unregister = registerCleanup(stop);
  const exists: number[] = [];
  await new Promise<void>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`the IDLE watcher exited with ${code} before it was ready`)));
    createInterface({ input: child.stdout }).on("line", (line) => {
      if (line === "READY") resolve();
      const match = /^EXISTS (\d+) ([0-9.]+)$/.exec(line);
      if (match !== null) exists.push(Number(match[2]));
    });
  });
  return {
    exists,
    stop: () => {
      unregister();
      stop();
    },
  };
}

childMain<PushTask>(async (task): Promise<PushResult> => {
  const progress = (message: string) => process.stderr.write(`bench:   push: ${message}\n`);
  const dovecot = await startBenchDovecot();
  // The mailbox exists (and is synced once, empty) before the watch starts.
  await dovecot.append(LOGIN, PASSWORD, crlf(corpusMessage(0, { to: `${LOGIN}@remote.test`, tag: `push-${Date.now()}-first` }).text));
  const mail = await startMailNode(task.endpoint, { smtp: false, push: true, admit: [dovecot.server] });
  try {
    const { userId } = await benchUser(mail.store, "bench");
    const identity = await imapIdentity(mail.store, userId, dovecot, LOGIN);
    const order = { remote_id: identity.identity_id, user_id: userId };
    mail.nc.publish("imap_worker", encodeJson({ order: "add_worker", ...order }));
    mail.nc.publish("IMAPfetcher", encodeJson({ order: "sync", ...order }));
    const cell = () => mail.node.host.get(IMAP_KIND, identity.identity_id);
    const deadline = Date.now() + 30_000;
    // Synced once, and watching (on the first sync's connection).
    while (
      !(
        JSON.stringify(cell()?.summary().state ?? "").includes('"push":"watching"') &&
        ((cell()?.inspect().context as ImapWorkerContext | undefined)?.history.length ?? 0) >= 1
      )
    ) {
      if (Date.now() > deadline) throw new Error(`the imap worker is not watching after 30 s: ${JSON.stringify(cell()?.summary().state)}`);
      await sleep(50);
    }
    // Let the node's connection and the baseline's settle into IDLE.
    await sleep(1_000);

    // Stored messages, by Message-ID, as their documents appear.
    const storedAt = new Map<string, number>();
    const kv = await new Kvm(mail.nc).open("caliopen_messages");
    const watch = await kv.watch({ key: `${userId}.*`, include: "updates" });
    void (async () => {
      for await (const entry of watch) {
        if (entry.operation !== "PUT") continue;
        const decoded = decodeJson(entry.value);
        if (!decoded.ok) continue;
        const externalId = (decoded.value as Message).external_references?.message_id;
        if (typeof externalId === "string" && !storedAt.has(externalId)) storedAt.set(externalId, epochNow());
      }
    })();
    const watcher = await startIdleWatcher(dovecot.port);
    const appender = await dovecot.client(LOGIN, PASSWORD);

    const appendMs: (number | null)[] = [];
    const idleMs: (number | null)[] = [];
    const nodeMs: (number | null)[] = [];
    const tag = `push-${Date.now()}`;
    for (let i = 1; i <= task.appends; i++) {
      const message = corpusMessage(i, { to: `${LOGIN}@remote.test`, tag });
      const externalId = corpusMessageId(i, tag);
      const raw = crlf(message.text);
      const seenBefore = watcher.exists.length;
      const sentAt = epochNow();
      await appender.append("INBOX", raw);
      appendMs.push(epochNow() - sentAt);
      const until = sentAt + SEEN_WITHIN_MS;
      while ((watcher.exists.length === seenBefore || !storedAt.has(externalId)) && epochNow() < until) await sleep(2);
      const idleAt = watcher.exists[seenBefore];
      idleMs.push(idleAt === undefined ? null : idleAt - sentAt);
      const nodeAt = storedAt.get(externalId);
      nodeMs.push(nodeAt === undefined ? null : nodeAt - sentAt);
      const rest = sentAt + task.spacingMs - epochNow();
      if (rest > 0) await sleep(rest);
    }
    watch.stop();
    watcher.stop();
    const overhead = nodeMs.map((node, i) => (node === null || idleMs[i] == null ? null : node - (idleMs[i] as number)));
    const result: PushResult = {
      appends: task.appends,
      spacingMs: task.spacingMs,
      append: latencySummary(appendMs),
      idle: latencySummary(idleMs),
      node: latencySummary(nodeMs),
      overhead: latencySummary(overhead),
      warnings: mail.warnings(),
    };
    progress(`IDLE client median ${result.idle.median.toFixed(1)} ms, node median ${result.node.median.toFixed(1)} ms (${result.node.missed} missed)`);
    if (result.node.missed > 0 || result.idle.missed > 0)
      throw new Error(`APPENDs not seen within ${SEEN_WITHIN_MS} ms: ${result.idle.missed} by the IDLE client, ${result.node.missed} by the node`);
    return result;
  } finally {
    await mail.stop();
    await dovecot.stop();
  }
});
