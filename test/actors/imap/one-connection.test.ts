// One IMAP connection per account, against a real Dovecot seen through a counting TCP proxy (one per
// account, or one for many): with push on, the watch and every sync share one connection (the sync
// takes it out of IDLE and gives it back); a connection cut halfway through a sync is recovered, each
// message imported once; a node starting many workers, or seeing all their connections cut at once,
// opens new connections at its configured pace, not all in the same second. The shared connection on
// its own: kept for the next sync without a watch, then logged out; back in IDLE after a sync.
import type { NatsConnection } from "@nats-io/transport-node";
import { ImapFlow } from "imapflow";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createUser } from "../../../actors/accounts/create-user.ts";
import { AccountConnection } from "../../../actors/imap/account-connection.ts";
import type { ImapWorkerContext } from "../../../actors/imap/imap-worker-state.ts";
import type { Identity } from "../../../actors/store/model.ts";
import { openStore, type Store } from "../../../actors/store/store.ts";
import { Subjects } from "../../../runtime/subjects.ts";
import { PASSWORD, startTestDovecot, type TestDovecot } from "../../../scripts/local-servers/dovecot.ts";
import { makeTestCertificates, type TestCertificates } from "../../../scripts/local-servers/tls-certs.ts";
import { sleep, waitFor } from "../../../scripts/local-servers/wait.ts";
import { caliopenServices } from "../../../supervisors/caliopen-services.ts";
import type { RunningNode } from "../../../supervisors/node.ts";
import { startTestNats, type TestNats } from "../../helpers/nats-server.ts";
import { startTestNode, testCaliopenConfig, testDestinations } from "../../helpers/test-node.ts";
import { type CountingProxy, startCountingProxy } from "./counting-proxy.ts";
import { publishFor } from "./worker-bus.ts";

/**
 * How long Dovecot may take to tell an IDLE client of new mail: half a second with inotify, up to its
 * 30 s mailbox check when the machine's inotify instances are used up (other tests' Dovecots).
 */
const PUSHED_WITHIN_MS = 40_000;
/** How long the test node keeps a connection nobody watches. */
const KEEP_UNWATCHED_MS = 2_000;
/** New IMAP connections the test node opens a second at most. */
const CONNECTS_PER_SECOND = 4;

interface Context {
  nats: TestNats;
  certs: TestCertificates;
  dovecot: TestDovecot;
  node: RunningNode;
  client: NatsConnection;
  store: Store;
  /** Counting proxies in front of Dovecot, admitted by the node's destination policy: one per test. */
  proxies: CountingProxy[];
  caPem: string;
}

const test = suite<Context>("one IMAP connection per account");

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  ctx.certs = await makeTestCertificates();
  const { certs } = ctx;
  ctx.dovecot = await startTestDovecot({ tls: { cert: certs.serverCert, key: certs.serverKey, ca: certs.ca } });
  ctx.proxies = [];
  for (let n = 0; n < 4; n++) ctx.proxies.push(await startCountingProxy(ctx.dovecot));
  ctx.caPem = await certs.caPem();
  const destinations = testDestinations(
    ctx.proxies.map((proxy) => proxy.server),
    [ctx.caPem],
  );
  const config = testCaliopenConfig({
    api: null,
    destinations,
    imap: {
      push: true,
      connectsPerSecond: CONNECTS_PER_SECOND,
      keepUnwatchedMs: KEEP_UNWATCHED_MS,
      retry: { initialMs: 200, maxMs: 400, factor: 2, jitter: 0 },
    },
  });
  ctx.node = await startTestNode(ctx.nats.endpoint, caliopenServices(config), { nodeId: "imap-one-connection" });
  ctx.client = await ctx.nats.connect();
  ctx.store = await openStore({ nc: ctx.client, subjects: new Subjects(""), secrets: config.secrets });
});
test.after(async (ctx) => {
  await ctx.node.shutdown("test over");
  await Promise.all(ctx.proxies.map((proxy) => proxy.stop()));
  await ctx.dovecot.stop();
  await ctx.certs.remove();
  await ctx.nats.stop();
});

let proxiesUsed = 0;

function proxy(ctx: Context): CountingProxy {
  const next = ctx.proxies[proxiesUsed++];
  if (next === undefined) throw new Error("more proxies used than started");
  return next;
}

let accounts = 0;

/** A Dovecot account, its own Caliopen user, and the remote identity that syncs it through `inserver`. */
async function account(ctx: Context, inserver: string): Promise<{ login: string; identity: Identity }> {
  const login = `one${++accounts}`;
  const user = (await createUser(ctx.store, { name: `user${accounts}`, email: `user${accounts}@platform.test` })).user;
  const identity = await ctx.store.identities.create({
    user_id: user.user_id,
    type: "remote",
    protocol: "imap",
    identifier: `${login}@remote.test`,
    display_name: login,
    infos: { inserver, outserver: "127.0.0.1:1", poll_interval: "15" },
    credentials: { username: login, password: PASSWORD },
  });
  return { login, identity };
}

function mail(n: number): string {
  return `From: Sender ${n} <sender${n}@elsewhere.test>\r\nTo: someone@remote.test\r\nSubject: message ${n}\r\nMessage-ID: <one-${n}-${Date.now()}-${Math.random()}@elsewhere.test>\r\nDate: Sat, 28 Nov 2026 10:00:00 +0000\r\n\r\nbody of message ${n}\r\n`;
}

async function storedCount(ctx: Context, identity: Identity): Promise<number> {
  return (await ctx.store.messages.list(identity.user_id, { limit: 1 })).total;
}

function state(ctx: Context, identity: Identity): string {
  return JSON.stringify(ctx.node.host.get("imap", identity.identity_id)?.summary().state ?? "");
}

function context(ctx: Context, identity: Identity): Partial<ImapWorkerContext> {
  return (ctx.node.host.get("imap", identity.identity_id)?.inspect().context ?? {}) as Partial<ImapWorkerContext>;
}

/** Synced, nothing more to do, and watching. */
async function settled(ctx: Context, identity: Identity, timeoutMs = 15_000): Promise<void> {
  await waitFor(
    "synced and watching",
    () => state(ctx, identity).includes('"sync":"idle"') && state(ctx, identity).includes('"push":"watching"') && context(ctx, identity).requested === null,
    timeoutMs,
  );
}

async function retire(ctx: Context, identity: Identity): Promise<void> {
  publishFor(ctx.client, "imap_worker", "remove_worker", identity);
  await waitFor("worker removed", () => ctx.node.host.get("imap", identity.identity_id) === undefined);
}

test("push on: the watch and every sync share one connection, idle and across syncs; new mail is imported once", async (ctx) => {
  const through = proxy(ctx);
  const { login, identity } = await account(ctx, through.server);
  for (let n = 1; n <= 2; n++) await ctx.dovecot.append(login, PASSWORD, mail(n));
  publishFor(ctx.client, "imap_worker", "add_worker", identity);
  publishFor(ctx.client, "IMAPfetcher", "sync", identity);
  await waitFor("2 stored", async () => (await storedCount(ctx, identity)) === 2, 15_000).catch((err) => {
    throw new Error(`${err.message}: ${JSON.stringify(context(ctx, identity))}`);
  });
  await settled(ctx, identity);
  assert.is(through.open(), 1, "one connection open while idle");

  // Pushed mail (each APPEND wakes the watch, whose sync runs on the same connection), and sync orders.
  for (let n = 3; n <= 5; n++) {
    await ctx.dovecot.append(login, PASSWORD, mail(n));
    await waitFor(`${n} stored`, async () => (await storedCount(ctx, identity)) === n, PUSHED_WITHIN_MS);
  }
  publishFor(ctx.client, "IMAPfetcher", "sync", identity);
  publishFor(ctx.client, "IMAPfetcher", "fullfetch", identity);
  await waitFor("the fullfetch done", () => (context(ctx, identity).history ?? []).some((run) => run.mode === "fullfetch"), 15_000);
  await settled(ctx, identity);
  await ctx.dovecot.append(login, PASSWORD, mail(6));
  await waitFor("6 stored", async () => (await storedCount(ctx, identity)) === 6, PUSHED_WITHIN_MS);
  await settled(ctx, identity);
  await sleep(300);

  assert.is(await storedCount(ctx, identity), 6, "each message imported once");
  assert.ok((context(ctx, identity).history ?? []).length >= 5, "several syncs ran");
  assert.is(through.total(), 1, "one connection for the whole time: every sync ran on the watch's");
  assert.is(through.maxOpen(), 1, "never two at once");
  assert.is(through.open(), 1);
  await retire(ctx, identity);
  await waitFor("logged out once the worker is removed (after the keep time)", () => through.open() === 0, KEEP_UNWATCHED_MS + 5_000);
});

test("a connection cut halfway through a sync: the sync is retried on a new one, every message imported once, one connection again", async (ctx) => {
  const through = proxy(ctx);
  const { login, identity } = await account(ctx, through.server);
  const count = 400;
  await ctx.dovecot.fillInbox(
    login,
    Array.from({ length: count }, (_, n) => Buffer.from(mail(n + 1))),
  );
  publishFor(ctx.client, "imap_worker", "add_worker", identity);
  publishFor(ctx.client, "IMAPfetcher", "sync", identity);
  await waitFor(
    "the sync halfway",
    () => {
      const progress = context(ctx, identity).progress;
      return progress !== null && progress !== undefined && progress.done > 0 && progress.done < count && state(ctx, identity).includes("fetching");
    },
    20_000,
    5,
  );
  through.cutAll();
  await waitFor("the sync failed", () => (context(ctx, identity).history ?? []).some((run) => run.outcome === "failed"), 10_000);
  await waitFor(`${count} stored`, async () => (await storedCount(ctx, identity)) === count, 180_000, 100);
  await settled(ctx, identity, 30_000);
  await sleep(300);
  assert.is(await storedCount(ctx, identity), count, "each message imported once");
  assert.is(context(ctx, identity).folders?.find((folder) => folder.path === "INBOX")?.lastseenuid, count);
  assert.is(through.open(), 1, "watching again, on one connection");
  assert.is(through.maxOpen(), 1, "never two at once, the retry included");
  await retire(ctx, identity);
});

/** At most `perWindow` of `times` within any `windowMs`. */
function busiestWindow(times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let first = 0, last = 0; last < sorted.length; last++) {
    while ((sorted[last] as number) - (sorted[first] as number) >= windowMs) first++;
    most = Math.max(most, last - first + 1);
  }
  return most;
}

test("many workers starting at once, then all their connections cut at once: new connections come at the node's pace", async (ctx) => {
  const through = proxy(ctx);
  const workers = 10;
  const identities: Identity[] = [];
  for (let n = 0; n < workers; n++) {
    const { login, identity } = await account(ctx, through.server);
    await ctx.dovecot.append(login, PASSWORD, mail(n));
    identities.push(identity);
  }
  for (const identity of identities) {
    publishFor(ctx.client, "imap_worker", "add_worker", identity);
    publishFor(ctx.client, "IMAPfetcher", "sync", identity);
  }
  for (const identity of identities) await settled(ctx, identity, 30_000);
  assert.is(through.total(), workers, "one connection each");
  assert.is(through.open(), workers);
  // Slots are 1/CONNECTS_PER_SECOND apart: any second holds at most CONNECTS_PER_SECOND + 1 of them
  // (a connection is accepted after its slot, never before).
  const startWindow = busiestWindow(through.acceptedAt(), 1_000);
  assert.ok(startWindow <= CONNECTS_PER_SECOND + 1, `${startWindow} connections accepted within one second at start`);

  // The IMAP server drops every session (a restart): each watch opens a new connection.
  through.reset();
  through.cutAll();
  await waitFor("every connection cut", () => through.open() === 0);
  await waitFor("every watch connected again", () => through.total() >= workers && through.open() === workers, 30_000);
  for (const identity of identities) await settled(ctx, identity, 30_000);
  const againWindow = busiestWindow(through.acceptedAt(), 1_000);
  assert.ok(againWindow <= CONNECTS_PER_SECOND + 1, `${againWindow} connections accepted within one second after the cut`);
  assert.is(through.total(), workers, "one new connection each");
  for (const identity of identities) assert.is(await storedCount(ctx, identity), 1);
  for (const identity of identities) await retire(ctx, identity);
});

test("the shared connection alone: kept for the next sync without a watch, then logged out; back in IDLE after a sync", async (ctx) => {
  const through = proxy(ctx);
  const login = `alone${++accounts}`;
  await ctx.dovecot.append(login, PASSWORD, mail(1));
  const [host, port] = through.server.split(":");
  const connection = new AccountConnection({
    open: async () => {
      const client = new ImapFlow({
        host: host as string,
        port: Number(port),
        secure: false,
        tls: { ca: ctx.caPem },
        auth: { user: login, pass: PASSWORD },
        logger: false,
        autoIdleDelay: 200,
      });
      client.on("error", () => undefined);
      await client.connect();
      return client;
    },
    keepUnwatchedMs: 500,
    logoutWithinMs: 2_000,
  });
  const look = async (client: ImapFlow) => {
    const lock = await client.getMailboxLock("INBOX", { readOnly: true });
    try {
      return ((await client.search({ all: true }, { uid: true })) || []).length;
    } finally {
      lock.release();
    }
  };
  try {
    const first = await connection.borrow(new AbortController().signal);
    assert.is(await look(first.client), 1);
    first.giveBack(true);
    const second = await connection.borrow(new AbortController().signal);
    assert.ok(second.client === first.client, "the next sync reuses it");
    second.giveBack(true);
    assert.is(through.total(), 1);
    await waitFor("logged out after the keep time", () => through.open() === 0, 5_000);

    // Given back as not reusable: closed, the next borrow opens a new one.
    const third = await connection.borrow(new AbortController().signal);
    third.giveBack(false);
    await waitFor("closed", () => through.open() === 0);
    const fourth = await connection.borrow(new AbortController().signal);
    assert.ok(fourth.client !== third.client);
    fourth.giveBack(true);
    assert.is(through.total(), 3);

    // Watching: new mail is heard in IDLE, a sync borrows the same connection, and IDLE comes back.
    // The connection a sync just gave back was looking at the mailbox: no look again to start with.
    let heard = 0;
    connection.watch({ mailbox: "INBOX", onNewMail: () => heard++, onTrouble: () => undefined });
    await waitFor("IDLE", () => fourth.client.idling);
    assert.is(heard, 0);
    await ctx.dovecot.append(login, PASSWORD, mail(2));
    await waitFor("new mail heard", () => heard === 1, PUSHED_WITHIN_MS);
    const sync = await connection.borrow(new AbortController().signal);
    assert.ok(sync.client === fourth.client, "the sync runs on the watch's connection");
    assert.is(await look(sync.client), 2);
    sync.giveBack(true);
    await waitFor("IDLE again", () => fourth.client.idling);
    await ctx.dovecot.append(login, PASSWORD, mail(3));
    await waitFor("new mail heard after the sync", () => heard === 2, PUSHED_WITHIN_MS);
    await sleep(700);
    assert.is(through.open(), 1, "a watched connection is not logged out after the keep time");
    assert.is(through.total(), 3);
  } finally {
    connection.unwatch();
  }
  await waitFor("logged out after the keep time once the watch stops", () => through.open() === 0);
});

test.run();
