import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { DeadLetters } from "../../runtime/dead-letters.ts";
import { encodeJson } from "../../runtime/json.ts";
import { silentLogger } from "../../runtime/logger.ts";
import { Subjects } from "../../runtime/subjects.ts";
import { relativeTime } from "../../scripts/cli/format.ts";
import { formatTable } from "../../scripts/cli/table.ts";
import { waitFor } from "../../scripts/local-servers/wait.ts";
import { type RunningNode, startNode } from "../../supervisors/node.ts";
import { type CliResult, startCli } from "../helpers/cli-process.ts";
import { counterFamily } from "../helpers/counter-family.ts";
import { startTestNats, type TestNats } from "../helpers/nats-server.ts";

// More than one page of the debug subject (500), so listing them all needs a second page.
const BULK_ACTORS = 503;

interface Fixture {
  nats: TestNats;
  nc: NatsConnection;
  node: RunningNode;
  dataDir: string;
}

const test = suite<{ fx: Fixture; cli(...args: string[]): Promise<CliResult> }>("caliopen CLI");

test.before(async (ctx) => {
  const nats = await startTestNats();
  const dataDir = await mkdtemp(join(tmpdir(), "caliopen-cli-test-"));
  const node = await startNode(
    {
      nats: nats.endpoint,
      natsPort: 0,
      dataDir,
      namespace: "",
      nodeId: "cli-node",
      shutdownGraceMs: 1000,
      replicas: 1,
      logLevel: "silent",
      shards: 8,
      failureDetectionMs: 2_000,
      passivateAfterMs: 60_000,
    },
    { families: [counterFamily("counter"), counterFamily("bulk", "none")], bindings: () => ({}) },
    silentLogger(),
  );
  await node.supervisors.get("counter")!.start("alice");
  await node.supervisors.get("counter")!.start("bob@example.com/inbox");
  const bulk = node.supervisors.get("bulk")!;
  for (let i = 0; i < BULK_ACTORS; i++) await bulk.start(`b${String(i).padStart(4, "0")}`);
  ctx.fx = { nats, nc: await nats.connect(), node, dataDir };
  ctx.cli = (...args) => startCli(args, nats.env).exited;
});

test.after(async (ctx) => {
  await ctx.fx.node.shutdown("test over");
  await ctx.fx.nats.stop();
  await rm(ctx.fx.dataDir, { recursive: true, force: true });
});

test("help lists every command; an unknown command prints the usage and exits 2", async ({ cli }) => {
  const [help, unknown, foreign] = await Promise.all([cli("--help"), cli("frobnicate"), cli("nodes", "--kind", "x")]);
  assert.is(help.code, 0);
  for (const command of ["nodes", "actors", "inspect", "watch", "send", "deadletters"]) assert.match(help.stdout, new RegExp(`^  ${command}\\b`, "m"));
  assert.is(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command "frobnicate"/);
  assert.match(unknown.stderr, /usage: caliopen/);
  assert.is(foreign.code, 2);
  assert.match(foreign.stderr, /nodes does not take --kind/);
});

test("nodes lists the running node with its process, version and NATS server", async ({ cli, fx }) => {
  const result = await cli("nodes");
  assert.is(result.code, 0, result.stderr);
  const [header, row] = result.stdout.split("\n");
  assert.match(header ?? "", /^NODE\s+HOST\s+PID\s+STARTED\s+VERSION\s+ACTORS\s+NATS/);
  assert.match(
    row ?? "",
    new RegExp(`^cli-node\\s+\\S+\\s+${process.pid}\\s+.*\\s0\\.1\\.0\\s+${BULK_ACTORS + 2}\\s+127\\.0\\.0\\.1:${fx.nats.server.port}\\b`),
  );

  const json = JSON.parse((await cli("nodes", "--json")).stdout) as { node: string; actors: number }[];
  assert.equal(
    json.map((node) => [node.node, node.actors]),
    [["cli-node", BULK_ACTORS + 2]],
  );
});

test("actors lists each actor with its state; --kind filters; --json parses", async ({ cli }) => {
  const result = await cli("actors", "--kind", "counter");
  assert.is(result.code, 0, result.stderr);
  const lines = result.stdout.trim().split("\n");
  assert.match(lines[0] ?? "", /^KIND\s+KEY\s+NODE\s+STATUS\s+STATE\s+SINCE\s+RESTARTS\s+LAST ERROR\s+NEXT DEADLINE$/);
  assert.match(lines[1] ?? "", /^counter\s+alice\s+cli-node\s+running\s+idle\s+(now|\d+s ago)\s+0\s+-\s+-$/);
  assert.match(lines[2] ?? "", /^counter\s+bob@example\.com\/inbox\s+cli-node\s+running\s+idle\b/);
  assert.is(lines[3], "2 actors on 1 node");

  const json = JSON.parse((await cli("actors", "--kind", "counter", "--json")).stdout) as { kind: string; key: string; state: unknown }[];
  assert.equal(
    json.map((actor) => `${actor.kind}/${actor.key}=${String(actor.state)}`),
    ["counter/alice=idle", "counter/bob@example.com/inbox=idle"],
  );
});

test("actors fetches every page of a node with more actors than one page, and --limit cuts the list", async ({ cli }) => {
  const all = JSON.parse((await cli("actors", "--kind", "bulk", "--json")).stdout) as { key: string }[];
  assert.is(all.length, BULK_ACTORS);
  assert.is(new Set(all.map((actor) => actor.key)).size, BULK_ACTORS, "no actor listed twice");
  assert.is(all.at(-1)?.key, `b${String(BULK_ACTORS - 1).padStart(4, "0")}`);

  const limited = await cli("actors", "--kind", "bulk", "--limit", "3");
  assert.is(limited.code, 0, limited.stderr);
  const lines = limited.stdout.trim().split("\n");
  assert.equal(
    lines.slice(1, -1).map((line) => line.split(/\s+/)[1]),
    ["b0000", "b0001", "b0002"],
  );
  assert.is(lines.at(-1), `showing 3 of ${BULK_ACTORS} actors on 1 node`);
});

test("actors merges the replies of several nodes, sorted by kind and key, and --limit cuts the merged list", async ({ cli, fx }) => {
  const since = new Date().toISOString();
  const fakeActors = ["a2", "a1"].map((key) => ({
    kind: "bulk",
    key,
    subject: `caliopen.actor.bulk.${key}`,
    node: "fake-node",
    status: "running",
    state: "idle",
    since,
    restarts: 0,
    busy: false,
    lastError: null,
    deadlines: {},
  }));
  // A second node as far as the debug subject can tell: it answers the actors query the way a node does.
  const fake = fx.nc.subscribe(fx.node.subjects.debug("actors"), {
    callback: (_err, msg) => {
      const query = JSON.parse(msg.string()) as { offset?: number; limit?: number };
      const offset = query.offset ?? 0;
      msg.respond(encodeJson({ node: "fake-node", total: fakeActors.length, offset, actors: fakeActors.slice(offset, offset + (query.limit ?? 500)) }));
    },
  });
  await fx.nc.flush();
  try {
    const result = await cli("actors", "--kind", "bulk", "--limit", "3");
    assert.is(result.code, 0, result.stderr);
    const lines = result.stdout.trim().split("\n");
    assert.equal(
      lines.slice(1, -1).map((line) => line.split(/\s+/).slice(1, 3).join(" ")),
      ["a1 fake-node", "a2 fake-node", "b0000 cli-node"],
    );
    assert.is(lines.at(-1), `showing 3 of ${BULK_ACTORS + 2} actors on 2 nodes`);
  } finally {
    fake.unsubscribe();
  }
});

test("inspect shows the actor's context with its secrets redacted (keys may contain '/')", async ({ cli }) => {
  const result = await cli("inspect", "counter/bob@example.com/inbox");
  assert.is(result.code, 0, result.stderr);
  assert.match(result.stdout, /"password": "\[redacted\]"/);
  assert.not.match(result.stdout, /hunter2/);
  const actor = JSON.parse(result.stdout) as { kind: string; key: string; node: string; context: { count: number } };
  assert.equal([actor.kind, actor.key, actor.node, actor.context.count], ["counter", "bob@example.com/inbox", "cli-node", 0]);
});

test("inspect of an actor nobody runs exits 1 and says so", async ({ cli }) => {
  const result = await cli("inspect", "counter/nobody");
  assert.is(result.code, 1);
  assert.is(result.stdout, "");
  assert.is(result.stderr, "caliopen: no live actor counter/nobody (asked 1 node)\n");
  const malformed = await cli("inspect", "counter");
  assert.is(malformed.code, 2);
  assert.match(malformed.stderr, /expected KIND\/KEY/);
});

test("watch --count 1 prints the transition an actor message causes, then exits", async ({ fx }) => {
  const watch = startCli(["watch", "counter/alice", "--count", "1"], fx.nats.env);
  await waitFor("the watch to subscribe", () => watch.stderr().includes("watching counter/alice"), 10_000);
  fx.nc.publish(fx.node.subjects.actor("counter", "alice"), encodeJson({ type: "work", payload: { ms: 50 } }));
  const result = await watch.exited;
  assert.is(result.code, 0, result.stderr);
  assert.match(result.stdout, /^\d\d:\d\d:\d\d\.\d{3} {2}idle → working {2}\[work\] {2}cli-node\n$/);
});

test("watch --json prints each transition as the JSON the actor published", async ({ fx }) => {
  const watch = startCli(["watch", "counter/alice", "--count", "2", "--json"], fx.nats.env);
  await waitFor("the watch to subscribe", () => watch.stderr().includes("watching counter/alice"), 10_000);
  fx.nc.publish(fx.node.subjects.actor("counter", "alice"), encodeJson({ type: "work", payload: { ms: 50 } }));
  const result = await watch.exited;
  assert.is(result.code, 0, result.stderr);
  const transitions = result.stdout
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as { from: string; to: string; node: string });
  assert.equal(
    transitions.map((t) => `${t.from}>${t.to}@${t.node}`),
    ["idle>working@cli-node", "working>idle@cli-node"],
  );
});

test("send to an actor subject (outside the contract) makes a request and prints the reply", async ({ cli }) => {
  const result = await cli("send", "caliopen.actor.counter.alice", '{"type":"get"}');
  assert.is(result.code, 0, result.stderr);
  const reply = JSON.parse(result.stdout) as { error: boolean; count: number };
  assert.is(reply.error, false);
  assert.is(reply.count, 2, "the two work runs of the watch tests");
});

test("send of a deliver order prints the error reply (no SMTP service here) and exits 1", async ({ cli }) => {
  const result = await cli("send", "outboundSMTP", '{"order":"deliver","message_id":"m1","remote_id":"r1","user_id":"u1"}');
  assert.is(result.code, 1);
  const reply = JSON.parse(result.stdout) as { error: boolean; message: string };
  assert.is(reply.error, true);
  assert.match(reply.message, /smtp-bridge .* does not run on this node/);
});

test("send of a request order with a missing field shows the validation error naming the field", async ({ cli }) => {
  const result = await cli("send", "outboundSMTP", '{"order":"deliver","message_id":"m1","remote_id":"r1"}');
  assert.is(result.code, 1);
  assert.match(result.stdout, /missing required field \\"user_id\\"/);
});

test("send with a payload that is not JSON exits 2 before connecting", async () => {
  // Nothing listens at this URL: had the CLI tried to connect first, it would exit 1, not 2.
  const result = await startCli(["--nats", "nats://127.0.0.1:1", "send", "outboundSMTP", "{order: deliver}"]).exited;
  assert.is(result.code, 2);
  assert.match(result.stderr, /^caliopen: the payload is not valid JSON/);
});

test("a publish-mode order the contract would refuse is not published", async ({ cli }) => {
  const result = await cli("send", "imap_worker", '{"order":"add_worker","remote_id":"r1"}');
  assert.is(result.code, 2);
  assert.match(result.stderr, /invalid add_worker order: missing required field "user_id"/);
});

test("send of a publish-mode order publishes it; deadletters then shows it refused", async ({ cli, fx }) => {
  const before = await cli("deadletters");
  assert.is(before.code, 0, before.stderr);
  assert.is(before.stdout, "no dead letters\n");

  for (const remoteId of ["r-dead-1", "r-dead-2"]) {
    const sent = await cli("send", "imap_worker", `{"order":"add_worker","remote_id":"${remoteId}","user_id":"u1"}`);
    assert.is(sent.code, 0, sent.stderr);
    assert.is(sent.stdout, "published add_worker on imap_worker\n");
  }

  await waitFor("the dead letters to be stored", async () => (await fx.node.deadLetters.list(10)).length === 2);
  const listed = await cli("deadletters");
  assert.is(listed.code, 0, listed.stderr);
  const lines = listed.stdout.trim().split("\n");
  assert.match(lines[0] ?? "", /^SEQ\s+AT\s+SUBJECT\s+NODE\s+REASON\s+PAYLOAD$/);
  assert.match(
    lines[1] ?? "",
    /^\s*1\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+imap_worker\s+cli-node\s+add_worker failed: imap-bridge .*…\s+\{"order":"add_worker","remote_id":"r-dead-1","user_id":"u1"\}$/,
  );
  assert.match(lines[2] ?? "", /^\s*2\s.*"remote_id":"r-dead-2"/);
  assert.is(lines[3], "2 dead letters");

  const newest = await cli("deadletters", "--limit", "1");
  const [, onlyRow, footer, ...more] = newest.stdout.trim().split("\n");
  assert.match(onlyRow ?? "", /^\s*2\s.*"remote_id":"r-dead-2"/);
  assert.is(footer, "the newest 1 of 2 dead letters (--limit N for more)");
  assert.equal(more, []);

  const json = JSON.parse((await cli("deadletters", "--json")).stdout) as { seq: number; subject: string; reason: string }[];
  assert.equal(
    json.map((letter) => [letter.seq, letter.subject]),
    [
      [1, "imap_worker"],
      [2, "imap_worker"],
    ],
  );
  assert.match(json[0]?.reason ?? "", /does not run on this node/);
});

test("deadletters in a namespace no node has used says so and creates nothing", async ({ cli, fx }) => {
  const result = await cli("--namespace", "elsewhere", "deadletters");
  assert.is(result.code, 0, result.stderr);
  assert.is(result.stdout, "no dead letters\n");
  const jsm = await jetstreamManager(fx.nc);
  const streams: string[] = [];
  for await (const name of jsm.streams.names()) streams.push(name);
  assert.not.ok(streams.includes(DeadLetters.streamName(new Subjects("elsewhere"))), `streams: ${streams.join(", ")}`);
});

test("commands in a namespace with no node report that nobody answered", async ({ cli }) => {
  const result = await cli("--namespace", "elsewhere", "nodes");
  assert.is(result.code, 1);
  assert.match(result.stderr, /no node answered on elsewhere\.caliopen\.debug\.nodes/);
});

test("an unreachable NATS gives one clear line and exit 1", async () => {
  const result = await startCli(["--nats", "nats://127.0.0.1:1", "nodes"]).exited;
  assert.is(result.code, 1);
  assert.is(result.stdout, "");
  assert.match(result.stderr, /^caliopen: cannot reach NATS at nats:\/\/127\.0\.0\.1:1: [^\n]+\n$/);
});

test("a NATS that refuses the CLI's credential (or wants one) gives one clear line and exit 1", async ({ fx }) => {
  const anonymous = await startCli(["nodes"], { NATS_URL: fx.nats.url }).exited;
  assert.is(anonymous.code, 1);
  assert.match(
    anonymous.stderr,
    /^caliopen: NATS at nats:\/\/127\.0\.0\.1:\d+ refused the connection: authorization violation \(the server requires credentials[^\n]*CALIOPEN_DATA_DIR[^\n]*\)\n$/,
  );
  const wrong = await startCli(["nodes"], { NATS_URL: fx.nats.url, NATS_TOKEN: "not-the-token" }).exited;
  assert.is(wrong.code, 1);
  assert.match(wrong.stderr, /^caliopen: NATS at \S+ refused the connection: authorization violation \(the server refused our token \(NATS_TOKEN\)\)\n$/);
  assert.not.match(wrong.stderr, /not-the-token/);
});

test("tables cut long cells with … and align right-aligned columns", () => {
  const table = formatTable(
    [
      { header: "NAME", maxWidth: 6 },
      { header: "N", align: "right" },
    ],
    [
      ["abcdefghij", "5"],
      ["ab", "123"],
    ],
  );
  assert.is(table, ["NAME      N", "abcde…    5", "ab      123"].join("\n"));
  const now = Date.parse("2025-01-01T00:10:00Z");
  assert.equal(
    ["2025-01-01T00:09:48Z", "2025-01-01T00:15:00Z", "2024-12-30T00:10:00Z", "not a date"].map((iso) => relativeTime(iso, now)),
    ["12s ago", "in 5m", "2d ago", "not a date"],
  );
});

test.run();
