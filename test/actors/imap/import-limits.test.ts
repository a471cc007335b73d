// The IMAP bridge against hostile servers (test/helpers/hostile-imap.ts) and a real Dovecot, on a real
// node: a literal of 2 GiB, a size that lies (a 512 MiB literal, under imapflow's own 1 GiB cap;
// pieces that never end), bytes trickled for ever (while logging in, inside a FETCH answer), and a
// server that makes progress too slowly to ever finish. Each becomes an error on the worker, in its
// history and on the identity (or a message skipped with its reason), the worker backs off, the
// node's memory stays far below what was announced, and an honest account on Dovecot syncs meanwhile.
// Then the size limit on Dovecot: a message over it is skipped, one of several MiB is fetched in
// pieces and stored whole; and a node taking one contract order at a time still imports every message.

import type { NatsConnection } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createUser } from "../../../actors/accounts/create-user.ts";
import type { Identity } from "../../../actors/store/model.ts";
import { openStore, type Store } from "../../../actors/store/store.ts";
import { decodeJson } from "../../../runtime/json.ts";
import { Subjects } from "../../../runtime/subjects.ts";
import { dovecotIdentity, startTestDovecot, type TestDovecot } from "../../../scripts/local-servers/dovecot.ts";
import { sleep, waitFor } from "../../../scripts/local-servers/wait.ts";
import { caliopenServices } from "../../../supervisors/caliopen-services.ts";
import type { RunningNode } from "../../../supervisors/node.ts";
import { HOSTILE_HOST, type HostileImap, type HostileMode, startHostileImap } from "../../helpers/hostile-imap.ts";
import { startTestNats, type TestNats } from "../../helpers/nats-server.ts";
import { startTestNode, testCaliopenConfig, testDestinations } from "../../helpers/test-node.ts";
import { messagesOf, publishFor } from "./worker-bus.ts";

interface Context {
  nats: TestNats;
  dovecot: TestDovecot;
  node: RunningNode;
  client: NatsConnection;
  store: Store;
  userId: string;
}

const MiB = 1024 * 1024;
const MAX_MESSAGE = 4 * MiB;
const TIMEOUT_MS = 3_000;
const SYNC_MAX_MS = 8_000;
/** What the node's memory may grow by while it is attacked: far below any literal announced here. */
const MEMORY_BOUND = 128 * MiB;

const test = suite<Context>("IMAP import limits");

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  ctx.dovecot = await startTestDovecot();
  const config = testCaliopenConfig({
    api: null,
    // The hostile servers and this Dovecot speak plain IMAP: admitted as the operator's exceptions.
    destinations: testDestinations([`${HOSTILE_HOST}+cleartext`, `${ctx.dovecot.server}+cleartext`]),
    imap: {
      push: false,
      retry: { initialMs: 200, maxMs: 400, factor: 2, jitter: 0 },
      maxMessageBytes: MAX_MESSAGE,
      timeoutMs: TIMEOUT_MS,
      syncMaxMs: SYNC_MAX_MS,
    },
  });
  // One order at a time per entry point: a sync's import batches do not go through them.
  ctx.node = await startTestNode(ctx.nats.endpoint, caliopenServices(config), { nodeId: "limits-node", maxConcurrentOrders: 1 });
  ctx.client = await ctx.nats.connect();
  ctx.store = await openStore({ nc: ctx.client, subjects: new Subjects(""), secrets: config.secrets });
  ctx.userId = (await createUser(ctx.store, { name: "alice", email: "alice@platform.test" })).user.user_id;
});
test.after(async (ctx) => {
  await ctx.node.shutdown("test over");
  await ctx.dovecot.stop();
  await ctx.nats.stop();
});

let accounts = 0;

async function identityOn(ctx: Context, inserver: string): Promise<Identity> {
  const n = ++accounts;
  return ctx.store.identities.create({
    user_id: ctx.userId,
    type: "remote",
    protocol: "imap",
    identifier: `box${n}@remote.test`,
    display_name: `Box ${n}`,
    infos: { inserver, outserver: "127.0.0.1:1", poll_interval: "15" },
    credentials: { username: `box${n}`, password: "secret" },
  });
}

function mail(n: number, body = `body of message ${n}\r\n`): string {
  return `From: Sender ${n} <sender${n}@elsewhere.test>\r\nTo: someone@remote.test\r\nSubject: message ${n}\r\nMessage-ID: <m${n}-${Date.now()}-${Math.random()}@elsewhere.test>\r\nDate: Sat, 28 Nov 2026 10:00:00 +0000\r\n\r\n${body}`;
}

interface RunRecord {
  mode: string;
  outcome: string;
  total: number;
  done: number;
  failed: number;
  skipped: number;
  error?: string;
  skipped_messages: { uid: number; size: number | null; reason: string }[];
}

interface WorkerView {
  state: string;
  last_error: { message: string } | null;
  history: RunRecord[];
  /** INBOX's cursor. */
  cursor: { uidvalidity: string | null; lastseenuid: number; failed_uids: number[] };
}

function workerOf(ctx: Context, identity: Identity): WorkerView | null {
  const cell = ctx.node.host.get("imap", identity.identity_id);
  if (cell === undefined) return null;
  const context = cell.inspect().context as Omit<WorkerView, "state" | "cursor"> & { folders: (WorkerView["cursor"] & { path: string })[] };
  const inbox = context.folders.find((folder) => folder.path === "INBOX");
  const cursor =
    inbox === undefined
      ? { uidvalidity: null, lastseenuid: 0, failed_uids: [] }
      : { uidvalidity: inbox.uidvalidity, lastseenuid: inbox.lastseenuid, failed_uids: inbox.failed_uids };
  return { ...context, cursor, state: JSON.stringify(cell.summary().state) };
}

/** Peak growth of the node process's memory (heap + Buffers, and RSS) over a baseline, sampled until stopped. */
function sampleMemory(): { stop(): { heapAndBuffers: number; rss: number } } {
  const base = process.memoryUsage();
  let heapAndBuffers = 0;
  let rss = 0;
  const sample = () => {
    const now = process.memoryUsage();
    heapAndBuffers = Math.max(heapAndBuffers, now.heapUsed + now.external - (base.heapUsed + base.external));
    rss = Math.max(rss, now.rss - base.rss);
  };
  const timer = setInterval(sample, 10);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return { heapAndBuffers, rss };
    },
  };
}

const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;

/** The Dovecot account `login` as a remote identity, its worker started and a sync asked for. */
async function syncDovecotAccount(ctx: Context, login: string): Promise<Identity> {
  const identity = await dovecotIdentity(ctx.store, ctx.userId, ctx.dovecot, login);
  publishFor(ctx.client, "imap_worker", "add_worker", identity);
  publishFor(ctx.client, "IMAPfetcher", "sync", identity);
  return identity;
}

/** An honest account on Dovecot with `count` new messages, synced while the hostile one is attacked. */
async function honestSync(ctx: Context, count: number): Promise<Identity> {
  const login = `honest${++accounts}`;
  await ctx.dovecot.addUser(login, "secret");
  for (let n = 1; n <= count; n++) await ctx.dovecot.append(login, "secret", mail(n));
  const identity = await syncDovecotAccount(ctx, login);
  await waitFor(`${count} honest messages stored`, async () => (await messagesOf(ctx.store, identity)).length === count, 20_000);
  return identity;
}

/**
 * A hostile account's sync against `mode`, an honest account synced meanwhile; returns the hostile
 * worker once it backs off with an error matching `error`, and the memory figures.
 */
async function attack(
  ctx: Context,
  mode: HostileMode,
  error: RegExp,
): Promise<{
  hostile: HostileImap;
  identity: Identity;
  worker: WorkerView;
  memory: { heapAndBuffers: number; rss: number };
  openDuringHonestSync: number;
  openAtEnd: number;
}> {
  const hostile = await startHostileImap(mode);
  const identity = await identityOn(ctx, hostile.server);
  const memory = sampleMemory();
  try {
    publishFor(ctx.client, "imap_worker", "add_worker", identity);
    publishFor(ctx.client, "IMAPfetcher", "sync", identity);
    await waitFor("the hostile server answering a sync", () => hostile.stats.commands.some((c) => /^(UID FETCH|LOGIN)/.test(c)), 10_000);
    await honestSync(ctx, 3);
    const openDuringHonestSync = hostile.stats.open;
    const worker = await waitFor(
      `the hostile account's worker backing off with ${error}`,
      () => {
        const seen = workerOf(ctx, identity);
        return seen?.state.includes("backingOff") && error.test(seen.last_error?.message ?? "") ? seen : null;
      },
      SYNC_MAX_MS + 10_000,
    );
    // It keeps trying (and failing) while the node serves others: the next tries come after a pause.
    const tries = hostile.stats.connections;
    await waitFor("another try after the pause", () => hostile.stats.connections > tries, 10_000);
    return { hostile, identity, worker, memory: memory.stop(), openDuringHonestSync, openAtEnd: hostile.stats.open };
  } finally {
    memory.stop();
    // Deleted, or its poller (started when the sync's error reached the identity) would announce its worker again.
    await ctx.store.identities.markDeleted(identity.user_id, identity.identity_id);
    publishFor(ctx.client, "imap_worker", "remove_worker", identity);
    try {
      await waitFor("hostile worker removed", () => workerOf(ctx, identity) === null, 10_000);
    } finally {
      await hostile.stop();
    }
  }
}

async function identityError(ctx: Context, identity: Identity): Promise<string> {
  return String((await ctx.store.identities.get(ctx.userId, identity.identity_id))?.infos.last_error?.message ?? "");
}

test("a 2 GiB literal: refused at its announcement, an error on the worker, its history and the identity; memory stays bounded; another account syncs meanwhile", async (ctx) => {
  const { hostile, identity, worker, memory } = await attack(ctx, { kind: "huge-literal", literal: 2 * 1024 * MiB }, /Literal size 2147483648 exceeds/);
  console.log(
    `  2 GiB literal: node memory grew by at most ${mib(memory.heapAndBuffers)} (heap + buffers), ${mib(memory.rss)} (RSS); the server could send ${mib(hostile.stats.bytesSent)} over ${hostile.stats.connections} connections`,
  );
  assert.match(worker.last_error?.message ?? "", /sent more in one answer than a node accepts/);
  assert.ok(memory.heapAndBuffers < MEMORY_BOUND, `memory grew by ${mib(memory.heapAndBuffers)}`);
  assert.ok(hostile.stats.bytesSent < 2 * 1024 * MiB, "the node hung up long before the literal's end");
  const failedRun = worker.history.find((run) => run.outcome === "failed");
  assert.ok(failedRun, "the failed run is in the history");
  assert.match(failedRun?.error ?? "", /Literal size 2147483648/);
  assert.match(await identityError(ctx, identity), /Literal size 2147483648/, "the identity's last_error");
});

test("a size that lies: RFC822.SIZE 1 KB, then a 512 MiB literal (under imapflow's own 1 GiB cap) is never allocated", async (ctx) => {
  const { hostile, worker, memory } = await attack(
    ctx,
    { kind: "lying-size", announced: 1000, literal: 512 * MiB },
    /Literal size 536870912 exceeds maximum allowed size of 2097152 bytes/,
  );
  console.log(
    `  512 MiB literal announced as 1 KB: node memory grew by at most ${mib(memory.heapAndBuffers)} (heap + buffers), ${mib(memory.rss)} (RSS); the server could send ${mib(hostile.stats.bytesSent)}`,
  );
  assert.ok(memory.heapAndBuffers < MEMORY_BOUND, `memory grew by ${mib(memory.heapAndBuffers)}`);
  assert.ok(hostile.stats.bytesSent < 64 * MiB * hostile.stats.connections, `the node read ${mib(hostile.stats.bytesSent)}`);
  assert.is(worker.cursor.lastseenuid, 0, "the cursor did not move past a message it could not read");
});

test("bytes trickled for ever inside a FETCH answer: the sync fails at its deadline, naming what it waited for; the socket is closed", async (ctx) => {
  const { hostile, identity, worker, openDuringHonestSync, openAtEnd } = await attack(
    ctx,
    { kind: "trickle", at: "fetch", everyMs: 50 },
    /no progress for 3 s/,
  );
  assert.match(worker.last_error?.message ?? "", /while waiting for the sizes and flags of 1 message\(s\): the IMAP server is silent or too slow/);
  assert.ok(openDuringHonestSync >= 1, "the honest account synced while the hostile server held a connection");
  assert.match(await identityError(ctx, identity), /no progress for 3 s/);
  assert.ok(hostile.stats.bytesSent > 0, "bytes were trickled");
  assert.ok(
    hostile.stats.connections >= 2 && openAtEnd <= 1,
    `${openAtEnd} of ${hostile.stats.connections} connections still open: a failed sync's socket is closed`,
  );
});

test("bytes trickled for ever in the answer to LOGIN: the login itself has the deadline", async (ctx) => {
  const { hostile, worker, openAtEnd } = await attack(ctx, { kind: "trickle", at: "login", everyMs: 50 }, /no progress for 3 s/);
  assert.match(worker.last_error?.message ?? "", /while waiting for connecting and logging in/);
  assert.ok(openAtEnd <= 1, `${openAtEnd} of ${hostile.stats.connections} connections still open: a login given up is closed`);
  assert.ok(!hostile.stats.commands.some((c) => c.startsWith("EXAMINE")), "never got further than LOGIN");
});

test("progress too slow to ever finish (one message every 300 ms of 100,000): the whole sync's budget ends it; what was done is kept", async (ctx) => {
  const { worker } = await attack(ctx, { kind: "slow-rows", messages: 100_000, everyMs: 300 }, /the sync ran longer than 8 s \(CALIOPEN_IMAP_SYNC_MAX_MS\)/);
  const failedRun = worker.history.find((run) => run.outcome === "failed");
  assert.is(failedRun?.total, 100_000);
});

test("a UID SEARCH that loses the folder's UIDs (EXISTS still counts them) deletes nothing here", async (ctx) => {
  const hostile = await startHostileImap({ kind: "vanishing", messages: 3 });
  const identity = await identityOn(ctx, hostile.server);
  try {
    publishFor(ctx.client, "imap_worker", "add_worker", identity);
    publishFor(ctx.client, "IMAPfetcher", "sync", identity);
    await waitFor("3 imported", async () => (await messagesOf(ctx.store, identity)).length === 3, 15_000);
    await waitFor("the first run done", () => workerOf(ctx, identity)?.history[0]?.outcome === "done", 15_000);
    const searchesBefore = hostile.stats.searches;
    publishFor(ctx.client, "IMAPfetcher", "sync", identity);
    const run = await waitFor("the second run", () => (workerOf(ctx, identity)?.history.length === 2 ? workerOf(ctx, identity)?.history[0] : null), 15_000);
    assert.ok(hostile.stats.searches > searchesBefore, "the server answered a SEARCH naming no message");
    assert.is(run.outcome, "done");
    assert.is((await messagesOf(ctx.store, identity)).length, 3, "none deleted");
  } finally {
    await ctx.store.identities.markDeleted(identity.user_id, identity.identity_id);
    publishFor(ctx.client, "imap_worker", "remove_worker", identity);
    await waitFor("worker removed", () => workerOf(ctx, identity) === null, 10_000);
    await hostile.stop();
  }
});

test("pieces that never end (a 2.9 MiB message that keeps coming): skipped with its reason, the sync succeeds, the cursor moves past it", async (ctx) => {
  const hostile = await startHostileImap({ kind: "endless-pieces", announced: 3_000_000 });
  const identity = await identityOn(ctx, hostile.server);
  try {
    publishFor(ctx.client, "imap_worker", "add_worker", identity);
    publishFor(ctx.client, "IMAPfetcher", "sync", identity);
    const run = await waitFor("the run in the history", () => workerOf(ctx, identity)?.history[0], 15_000);
    assert.is(run.outcome, "done");
    assert.equal([run.total, run.done, run.failed, run.skipped], [1, 1, 0, 1]);
    assert.is(run.skipped_messages[0]?.uid, 1);
    assert.match(
      run.skipped_messages[0]?.reason ?? "",
      /announced as 2\.9 MiB but more than 4 MiB were sent, over the limit \(CALIOPEN_IMAP_MAX_MESSAGE_SIZE\)/,
    );
    assert.ok(hostile.stats.bytesSent <= MAX_MESSAGE + 2 * MiB, `stopped after ${mib(hostile.stats.bytesSent)}`);
    const worker = workerOf(ctx, identity);
    assert.equal(worker?.cursor, { uidvalidity: "4242", lastseenuid: 1, failed_uids: [] });
    assert.match(worker?.last_error?.message ?? "", /1 message\(s\) skipped, not imported: UID 1 \(announced as 2\.9 MiB/);
    await waitFor("the note on the identity", async () => /UID 1 \(announced as 2\.9 MiB/.test(await identityError(ctx, identity)));
    assert.equal(await messagesOf(ctx.store, identity), []);
    // Skipped for good: the next sync does not fetch it again.
    const fetches = hostile.stats.commands.filter((c) => c.includes("BODY.PEEK")).length;
    publishFor(ctx.client, "IMAPfetcher", "sync", identity);
    await waitFor("a second run", () => (workerOf(ctx, identity)?.history.length ?? 0) >= 2, 10_000);
    assert.is(hostile.stats.commands.filter((c) => c.includes("BODY.PEEK")).length, fetches);
  } finally {
    await ctx.store.identities.markDeleted(identity.user_id, identity.identity_id);
    publishFor(ctx.client, "imap_worker", "remove_worker", identity);
    try {
      await waitFor("worker removed", () => workerOf(ctx, identity) === null, 10_000);
    } finally {
      await hostile.stop();
    }
  }
});

test("on Dovecot: a message over the limit is skipped unfetched and noted, one of several MiB is fetched in pieces and stored whole, the rest imported", async (ctx) => {
  const login = "sizes";
  await ctx.dovecot.addUser(login, "secret");
  const line = `${"x".repeat(76)}\r\n`;
  const big = mail(2, line.repeat(Math.ceil((2.5 * MiB) / line.length)));
  const tooBig = mail(3, line.repeat(Math.ceil((6 * MiB) / line.length)));
  await ctx.dovecot.append(login, "secret", mail(1));
  await ctx.dovecot.append(login, "secret", big);
  await ctx.dovecot.append(login, "secret", tooBig);
  await ctx.dovecot.append(login, "secret", mail(4));
  const identity = await syncDovecotAccount(ctx, login);
  const run = await waitFor("the run in the history", () => workerOf(ctx, identity)?.history[0], 20_000);
  assert.is(run.outcome, "done");
  assert.equal([run.total, run.done, run.failed, run.skipped], [4, 4, 0, 1]);
  assert.equal(
    run.skipped_messages.map((s) => s.uid),
    [3],
  );
  assert.match(run.skipped_messages[0]?.reason ?? "", /^6(\.\d)? MiB, over the limit of 4 MiB \(CALIOPEN_IMAP_MAX_MESSAGE_SIZE\)$/);
  assert.is(run.skipped_messages[0]?.size, Buffer.byteLength(tooBig));

  const stored = await messagesOf(ctx.store, identity);
  assert.equal(stored.map((m) => m.subject).sort(), ["message 1", "message 2", "message 4"]);
  const large = stored.find((m) => m.subject === "message 2");
  const raw = await ctx.store.raws.read(large?.raw_msg_id ?? "");
  assert.ok(raw !== null && Buffer.from(raw).toString("latin1").endsWith(big), "the large message's raw is the whole message, after the X-Fetched headers");

  const worker = workerOf(ctx, identity);
  assert.equal(worker?.cursor.lastseenuid, 4, "the cursor moved past the skipped message");
  assert.equal(worker?.cursor.failed_uids, []);
  assert.match(worker?.last_error?.message ?? "", /1 message\(s\) skipped, not imported: UID 3 \(6(\.\d)? MiB, over the limit of 4 MiB/);

  // The next sync finds nothing new, and does not try the skipped message again.
  await ctx.dovecot.append(login, "secret", mail(5));
  publishFor(ctx.client, "IMAPfetcher", "sync", identity);
  const next = await waitFor("the second run", () => (workerOf(ctx, identity)?.history.length === 2 ? workerOf(ctx, identity)?.history[0] : null), 20_000);
  assert.equal([next.total, next.done, next.skipped], [1, 1, 0], JSON.stringify(workerOf(ctx, identity)?.history));
  await sleep(100);
  assert.is(workerOf(ctx, identity)?.last_error, null, "a clean run clears the note");
});

test("a node taking one contract order at a time still imports a whole sync: its batches do not queue at the entry points", async (ctx) => {
  const busyBefore = await busyAnswers(ctx);
  const identity = await honestSync(ctx, 12);
  const run = await waitFor("the run in the history", () => workerOf(ctx, identity)?.history[0], 10_000);
  assert.equal([run.total, run.done, run.failed], [12, 12, 0]);
  assert.is(await busyAnswers(ctx), busyBefore, "no order of the sync was turned away as busy");
  assert.is(workerOf(ctx, identity)?.last_error, null);
});

/** How many inboundSMTP orders the node turned away as busy so far (caliopen.debug.nodes). */
async function busyAnswers(ctx: Context): Promise<number> {
  const reply = decodeJson((await ctx.client.request("caliopen.debug.nodes", new Uint8Array(), { timeout: 3_000 })).data);
  const entryPoints = reply.ok ? ((reply.value as { entryPoints: { subject: string; busy: number }[] }).entryPoints ?? []) : [];
  return entryPoints.find((entry) => entry.subject === "inboundSMTP")?.busy ?? 0;
}

test.run();
