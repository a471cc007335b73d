// `caliopen nats-config` on a real nats-server: the block it prints is the server's authorization, and
// each role can do what it should and is refused (a permissions violation, seen here) what it should not.
// A node whose credential is withdrawn stops for good instead of retrying.

import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { createUser } from "@nats-io/nkeys";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { decodeJson, encodeJson } from "../../runtime/json.ts";
import { type NatsEndpoint, natsConnectOptions, natsEndpointEnv } from "../../runtime/nats-endpoint.ts";
import { sleep, waitFor } from "../../scripts/local-servers/wait.ts";
import { caliopenServices } from "../../supervisors/caliopen-services.ts";
import type { NatsRole } from "../../supervisors/nats-roles.ts";
import type { RunningNode } from "../../supervisors/node.ts";
import { callApi } from "../helpers/api-client.ts";
import { type CliResult, startCli } from "../helpers/cli-process.ts";
import { startTestNats, type TestNats } from "../helpers/nats-server.ts";
import { startTestNode, testCaliopenConfig } from "../helpers/test-node.ts";

interface RoleInfo {
  role: NatsRole;
  nkey: string;
  seed_file: string;
  inboxPrefix: string | null;
}

interface Context {
  credentialsDir: string;
  authorization: string;
  roles: RoleInfo[];
  nats: TestNats;
  node: RunningNode;
  /** Permission errors the node's own connection met: its role must allow all it does. */
  nodeViolations: string[];
  apiUrl: string;
  token: string;
  identityId: string;
}

const test = suite<Context>("caliopen nats-config: roles on a real nats-server");

function endpointOf(ctx: Context, role: NatsRole): NatsEndpoint {
  const info = ctx.roles.find((entry) => entry.role === role)!;
  return { url: ctx.nats.url, nkey: info.seed_file, ...(info.inboxPrefix !== null && { inboxPrefix: info.inboxPrefix }) };
}

const cliAs = (ctx: Context, role: NatsRole, ...args: string[]): Promise<CliResult> => startCli(args, natsEndpointEnv(endpointOf(ctx, role))).exited;

/** A connection of the role's, with the permission violations the server reports on it. */
async function connectAs(ctx: Context, role: NatsRole): Promise<{ nc: NatsConnection; violations: string[] }> {
  const nc = await connect(await natsConnectOptions(endpointOf(ctx, role)));
  const violations: string[] = [];
  void (async () => {
    for await (const status of nc.status())
      if (status.type === "error" && /permissions violation/i.test(String(status.error))) violations.push(String(status.error));
  })();
  return { nc, violations };
}

/** Runs `action`, then waits until the server has answered it (a flush) and returns the new violations. */
async function violationsOf(connection: { nc: NatsConnection; violations: string[] }, action: () => unknown): Promise<string[]> {
  const before = connection.violations.length;
  await action();
  await connection.nc.flush();
  await sleep(100);
  return connection.violations.slice(before);
}

test.before(async (ctx) => {
  ctx.credentialsDir = await mkdtemp(join(tmpdir(), "caliopen-roles-"));
  const printed = await startCli(["nats-config", "--credentials-dir", ctx.credentialsDir, "--json"]).exited;
  assert.is(printed.code, 0, printed.stderr);
  const output = JSON.parse(printed.stdout) as { authorization: string; roles: RoleInfo[] };
  ctx.authorization = output.authorization;
  ctx.roles = output.roles;
  ctx.nats = await startTestNats({ security: { config: ctx.authorization, client: { nkey: join(ctx.credentialsDir, "node.nk") } } });
  let apiUrl = "";
  ctx.node = await startTestNode(endpointOf(ctx, "node"), caliopenServices(testCaliopenConfig(), { onApiStarted: (url) => (apiUrl = url) }), {
    nodeId: "role-node",
  });
  ctx.apiUrl = apiUrl;
  ctx.nodeViolations = [];
  void (async () => {
    for await (const status of ctx.node.nc.status()) if (status.type === "error") ctx.nodeViolations.push(String(status.error));
  })();
});

test.after(async (ctx) => {
  await ctx.node.shutdown("test over").catch(() => undefined);
  await ctx.nats.stop();
});

test("nats-config prints the same users again when re-run, and never a seed", async (ctx) => {
  const again = await startCli(["nats-config", "--credentials-dir", ctx.credentialsDir]).exited;
  assert.is(again.code, 0, again.stderr);
  for (const role of ctx.roles) {
    assert.ok(again.stdout.includes(role.nkey), `${role.role}'s public key kept`);
    const seed = (await readFile(role.seed_file, "utf8")).trim();
    assert.not.ok(again.stdout.includes(seed) || again.stderr.includes(seed), "a seed was printed");
  }
  assert.match(again.stdout, /NATS_INBOX_PREFIX=_INBOX\.observer/);
});

test("node role: a node runs on it, and the CLI with the node's key adds a user whose API calls make orders flow", async (ctx) => {
  const added = await cliAs(ctx, "node", "users", "add", "alice", "--json");
  assert.is(added.code, 0, added.stderr);
  ctx.token = (JSON.parse(added.stdout) as { token: string }).token;
  const created = await callApi(ctx.apiUrl, ctx.token, "POST", "/api/v2/identities/remotes", {
    protocol: "imap",
    identifier: "alice@provider.test",
    credentials: { username: "alice", password: "pw" },
    // A server that does not exist (.invalid never resolves): the test is about the orders, not the sync.
    infos: { inserver: "imap.provider.invalid:143", poll_interval: "15" },
  });
  assert.is(created.status, 201, JSON.stringify(created.body));
  ctx.identityId = created.body.identity_id as string;
  await waitFor("the account's poller runs", () => ctx.node.host.get("poller", ctx.identityId) !== undefined, 10_000);
  await waitFor("its imap worker runs", () => ctx.node.host.get("imap", ctx.identityId) !== undefined, 10_000);
  const node = await connectAs(ctx, "node");
  try {
    assert.equal(await violationsOf(node, () => node.nc.publish("notifications.u", encodeJson({}))), [], "a node publishes notifications");
  } finally {
    await node.nc.close();
  }
  assert.equal(ctx.nodeViolations, [], "the node role allows everything a node does");
});

test("peer role: the contract's subjects, in their queue groups; no debug, no store, no actor subjects, no one else's replies", async (ctx) => {
  const peer = await connectAs(ctx, "peer");
  try {
    // A request on a contract subject is answered (here: the draft does not exist).
    const reply = decodeJson(
      (await peer.nc.request("outboundSMTP", encodeJson({ order: "deliver", message_id: "nope", remote_id: "nope", user_id: "nope" }), { timeout: 5_000 }))
        .data,
    );
    assert.ok(reply.ok && (reply.value as { error: boolean }).error === true, JSON.stringify(reply));
    assert.equal(await violationsOf(peer, () => peer.nc.publish("keyAction", encodeJson({ order: "discover_key", contact_id: "c", user_id: "u" }))), []);
    assert.equal(await violationsOf(peer, () => peer.nc.subscribe("IMAPfetcher", { queue: "IMAPworkers" })), []);

    assert.match((await violationsOf(peer, () => peer.nc.subscribe("IMAPfetcher"))).join(), /Subscription to "IMAPfetcher"/);
    assert.match((await violationsOf(peer, () => peer.nc.subscribe("_INBOX.>"))).join(), /Subscription to "_INBOX\.>"/);
    assert.match(
      (await violationsOf(peer, () => peer.nc.publish(`caliopen.actor.poller.${ctx.identityId}`, encodeJson({ type: "poll.due" })))).join(),
      /Publish to "caliopen\.actor\.poller/,
    );
    assert.match((await violationsOf(peer, () => peer.nc.publish("$KV.caliopen_users.x", encodeJson({})))).join(), /Publish to "\$KV\.caliopen_users\.x"/);
    // Notifications are the nodes' word to users: a peer cannot forge one.
    assert.match((await violationsOf(peer, () => peer.nc.publish("notifications.u", encodeJson({})))).join(), /Publish to "notifications\.u"/);
    await peer.nc.request("caliopen.debug.nodes", new Uint8Array(), { timeout: 2_000 }).then(
      () => assert.unreachable("a peer read the debug subjects"),
      (err: Error) => assert.match(err.message, /Permissions Violation for Publish to "caliopen\.debug\.nodes"/),
    );
    await jetstreamManager(peer.nc, { timeout: 2_000 }).then(
      () => assert.unreachable("a peer reached the JetStream API"),
      (err: Error) => assert.match(err.message, /Permissions Violation/),
    );
  } finally {
    await peer.nc.close();
  }
});

test("observer role: nodes, actors, top, inspect, watch, deadletters and service discovery work; send and users are refused", async (ctx) => {
  const nodes = await cliAs(ctx, "observer", "nodes", "--json");
  assert.is(nodes.code, 0, nodes.stderr);
  assert.match(nodes.stdout, /"node":"role-node"/);
  const actors = await cliAs(ctx, "observer", "actors", "--kind", "poller", "--json");
  assert.is(actors.code, 0, actors.stderr);
  assert.ok(actors.stdout.includes(ctx.identityId));
  const top = await cliAs(ctx, "observer", "top", "--kind", "poller", "--once");
  assert.is(top.code, 0, top.stderr);
  assert.match(top.stdout, /^role-node\s+healthy\b/m);
  // The key column may cut a long key; its start is enough.
  assert.match(top.stdout, new RegExp(`^poller\\s+${ctx.identityId.slice(0, 20)}`, "m"));
  const inspected = await cliAs(ctx, "observer", "inspect", `poller/${ctx.identityId}`, "--json");
  assert.is(inspected.code, 0, inspected.stderr);
  assert.is((JSON.parse(inspected.stdout) as { key: string }).key, ctx.identityId);
  assert.is((await cliAs(ctx, "observer", "deadletters")).code, 0);

  // watch: the poller changes state when its identity is updated through the API.
  const watch = startCli(["watch", `poller/${ctx.identityId}`, "--count", "1", "--json"], natsEndpointEnv(endpointOf(ctx, "observer")));
  // The transition must come after the CLI subscribed (it takes a while to start on a busy machine).
  const transitions = `caliopen.debug.transitions.poller.${ctx.identityId}`;
  await waitFor("the watch subscribed", async () => (await ctx.nats.subscriptions()).some((sub) => sub.subject === transitions), 30_000, 100);
  const patched = await callApi(ctx.apiUrl, ctx.token, "PATCH", `/api/v2/identities/remotes/${ctx.identityId}`, { status: "inactive" });
  assert.is(patched.status, 200, JSON.stringify(patched.body));
  const watched = await watch.exited;
  assert.is(watched.code, 0, watched.stderr);
  assert.match(watched.stdout, /"kind":"poller"/);

  const sent = await cliAs(ctx, "observer", "send", "imap_worker", JSON.stringify({ order: "remove_worker", remote_id: ctx.identityId, user_id: "u" }));
  assert.is(sent.code, 1);
  assert.match(sent.stderr, /Permissions Violation for Publish to "imap_worker"/);
  const users = await cliAs(ctx, "observer", "users", "list");
  assert.is(users.code, 1);
  assert.match(users.stderr, /Permissions Violation/);

  const observer = await connectAs(ctx, "observer");
  try {
    // NATS service discovery, as `nats micro info caliopen --inbox-prefix _INBOX.observer` asks it.
    const info = decodeJson((await observer.nc.request("$SRV.INFO.caliopen", new Uint8Array(), { timeout: 2_000 })).data);
    assert.ok(info.ok && (info.value as { metadata: { node: string } }).metadata.node === "role-node", JSON.stringify(info));
    assert.equal(ctx.nodeViolations, [], "the node role allows answering service discovery");
    assert.match((await violationsOf(observer, () => observer.nc.subscribe("_INBOX.>"))).join(), /Subscription to "_INBOX\.>"/);
    assert.match((await violationsOf(observer, () => observer.nc.publish("caliopen.debug.transitions.poller.x", encodeJson({})))).join(), /Publish to/);
  } finally {
    await observer.nc.close();
  }
});

test("a node whose credential is withdrawn stops for good, saying why, instead of retrying for ever", async (ctx) => {
  const config = join(ctx.nats.dir, "nats-server.conf");
  const nodeKey = ctx.roles.find((role) => role.role === "node")!.nkey;
  const withdrawn = ctx.authorization.replace(`nkey: "${nodeKey}"`, `nkey: "${createUser().getPublicKey()}"`);
  assert.is.not(withdrawn, ctx.authorization);
  await writeFile(config, withdrawn);
  process.kill(ctx.nats.server.pid, "SIGHUP");
  let timer: NodeJS.Timeout | undefined;
  const reason = await Promise.race([
    ctx.node.lost,
    new Promise<string>((resolve) => (timer = setTimeout(() => resolve("still connected after 20 s"), 20_000))),
  ]);
  clearTimeout(timer);
  assert.match(reason, /authorization|authentication/i);
});

test.run();
