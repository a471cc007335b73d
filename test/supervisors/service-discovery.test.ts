// NATS service discovery (ADR-32) on real nodes, read with a plain NATS client as `nats micro` does:
// every node answers $SRV.PING/INFO/STATS (all services, by name, by name and id), lists the contract's
// subjects as its endpoints, and counts each endpoint's requests, errors and processing time. Anyone may
// send anything there: garbage and unusable reply subjects leave the node as it was. The `nats` CLI is
// not installed where the tests run: nats.js 2's services client stands in for it as an official client.

import { readFile } from "node:fs/promises";
import { createInbox, type NatsConnection } from "@nats-io/transport-node";
import { connect as connectV2, nkeyAuthenticator } from "nats";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { CONTRACT } from "../../contract/contract-table.ts";
import { decodeJson, encodeJson } from "../../runtime/json.ts";
import { ok } from "../../runtime/reply.ts";
import { sleep, waitFor } from "../../scripts/local-servers/wait.ts";
import type { RunningNode } from "../../supervisors/node.ts";
import type { ServiceSet } from "../../supervisors/services.ts";
import { startTestNats, type TestNats } from "../helpers/nats-server.ts";
import { startTestNode } from "../helpers/test-node.ts";

interface Identity {
  type: string;
  name: string;
  id: string;
  version: string;
  metadata: Record<string, string>;
}
interface EndpointInfo {
  name: string;
  subject: string;
  queue_group: string;
  metadata: Record<string, string>;
}
interface EndpointStats {
  name: string;
  subject: string;
  queue_group: string;
  num_requests: number;
  num_errors: number;
  last_error: string;
  processing_time: number;
  average_processing_time: number;
}
type Info = Identity & { description: string; endpoints: EndpointInfo[] };
type Stats = Identity & { started: string; endpoints: EndpointStats[] };

interface Context {
  nats: TestNats;
  nodes: RunningNode[];
  client: NatsConnection;
}

const test = suite<Context>("NATS service discovery");

// outboundSMTP's deliver answers at once; the other orders of this node are refused as not available.
const services: ServiceSet = {
  families: [],
  bindings: () => ({ outboundSMTP: { deliver: async () => ok("delivered") } }),
};

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  ctx.nodes = [await startTestNode(ctx.nats.endpoint, services, { nodeId: "srv-a" }), await startTestNode(ctx.nats.endpoint, services, { nodeId: "srv-b" })];
  ctx.client = await ctx.nats.connect();
});
test.after(async (ctx) => {
  await Promise.all(ctx.nodes.map((node) => node.shutdown("test over")));
  await ctx.nats.stop();
});

/** Every reply to one request within `ms`, as `nats micro` gathers them. */
async function gather<T>(client: NatsConnection, subject: string, payload: Uint8Array = new Uint8Array(), ms = 300): Promise<T[]> {
  const inbox = createInbox();
  const replies: T[] = [];
  const subscription = client.subscribe(inbox, {
    callback: (_err, msg) => {
      const decoded = decodeJson(msg.data);
      if (decoded.ok) replies.push(decoded.value as T);
    },
  });
  client.publish(subject, payload, { reply: inbox });
  await sleep(ms);
  subscription.unsubscribe();
  return replies;
}

const byNode = <T extends Identity>(replies: T[], node: string): T => {
  const reply = replies.find((entry) => entry.metadata.node === node);
  assert.ok(reply, `a reply from ${node}`);
  return reply;
};

test("$SRV.PING: one reply per node, of type ping_response, name caliopen, the package's version, a distinct id each", async ({ client }) => {
  const pings = await gather<Identity>(client, "$SRV.PING");
  assert.is(pings.length, 2, JSON.stringify(pings));
  for (const ping of pings) {
    assert.is(ping.type, "io.nats.micro.v1.ping_response");
    assert.is(ping.name, "caliopen");
    assert.is(ping.version, "0.1.0");
    assert.match(ping.id, /^[A-Za-z0-9]{22}$/);
  }
  assert.equal(pings.map((ping) => ping.metadata.node).sort(), ["srv-a", "srv-b"]);
  assert.is.not(pings[0]?.id, pings[1]?.id);
  assert.is((await gather<Identity>(client, "$SRV.PING.caliopen")).length, 2);
  assert.is((await gather<Identity>(client, "$SRV.PING.someone-else")).length, 0);
  const a = byNode(pings, "srv-a");
  const one = await gather<Identity>(client, `$SRV.PING.caliopen.${a.id}`);
  assert.equal(
    one.map((ping) => ping.metadata.node),
    ["srv-a"],
  );
});

test("$SRV.INFO.caliopen: the contract's subjects as endpoints, with their queue groups and how they are read", async ({ client }) => {
  const infos = await gather<Info>(client, "$SRV.INFO.caliopen");
  assert.is(infos.length, 2);
  const info = byNode(infos, "srv-b");
  assert.is(info.type, "io.nats.micro.v1.info_response");
  assert.is(info.name, "caliopen");
  assert.ok(info.description.length > 0);
  assert.equal(
    info.endpoints.map((endpoint) => [endpoint.name, endpoint.subject, endpoint.queue_group]),
    CONTRACT.map((spec) => [spec.subject, spec.subject, spec.queue]),
  );
  const smtp = info.endpoints.find((endpoint) => endpoint.subject === "outboundSMTP");
  assert.equal(smtp?.metadata, { orders: "deliver", delivery: "queue" });
  assert.is(info.endpoints.find((endpoint) => endpoint.subject === "IMAPfetcher")?.metadata.delivery, "intake");
  // The debug subject names the node's service id, to go from `caliopen nodes` to `nats micro stats`.
  const described = decodeJson((await client.request("caliopen.debug.nodes", new Uint8Array(), { timeout: 2_000 })).data);
  assert.ok(described.ok);
  const node = described.value as { node: string; serviceId: string };
  assert.is(node.serviceId, byNode(infos, node.node).id);
});

test("$SRV.STATS: requests, errors, the last error and processing time (ns) grow with the orders a node takes", async ({ client }) => {
  const totals = async () => {
    const stats = await gather<Stats>(client, "$SRV.STATS.caliopen");
    assert.is(stats.length, 2);
    const endpoint = (subject: string) => stats.map((node) => node.endpoints.find((entry) => entry.subject === subject)!);
    return { stats, smtp: endpoint("outboundSMTP"), fetcher: endpoint("IMAPfetcher") };
  };
  const before = await totals();
  for (const node of before.stats) {
    assert.is(node.type, "io.nats.micro.v1.stats_response");
    assert.ok(!Number.isNaN(Date.parse(node.started)));
  }
  const sum = (entries: EndpointStats[], field: "num_requests" | "num_errors" | "processing_time") => entries.reduce((total, entry) => total + entry[field], 0);

  const deliver = { order: "deliver", message_id: "m1", remote_id: "r1", user_id: "u1" };
  for (let i = 0; i < 4; i++) {
    const reply = decodeJson((await client.request("outboundSMTP", encodeJson(deliver), { timeout: 2_000 })).data);
    assert.ok(reply.ok && (reply.value as { error: boolean }).error === false, JSON.stringify(reply));
  }
  // Refused: a field missing.
  await client.request("outboundSMTP", encodeJson({ order: "deliver" }), { timeout: 2_000 });
  // A published order read from the intake is a request too (here refused: nothing runs it).
  client.publish("IMAPfetcher", encodeJson({ order: "sync", remote_id: "r1", user_id: "u1" }));

  await waitFor("the published order counted", async () => sum((await totals()).fetcher, "num_requests") === sum(before.fetcher, "num_requests") + 1);
  const after = await totals();
  assert.is(sum(after.smtp, "num_requests"), sum(before.smtp, "num_requests") + 5);
  assert.is(sum(after.smtp, "num_errors"), sum(before.smtp, "num_errors") + 1);
  assert.is(sum(after.fetcher, "num_errors"), sum(before.fetcher, "num_errors") + 1);
  assert.ok(sum(after.smtp, "processing_time") > sum(before.smtp, "processing_time"));
  assert.ok(
    after.smtp.some((entry) => entry.last_error !== ""),
    JSON.stringify(after.smtp.map((entry) => entry.last_error)),
  );
  for (const entry of [...after.smtp, ...after.fetcher]) {
    assert.ok(Number.isInteger(entry.processing_time) && Number.isInteger(entry.average_processing_time));
    assert.is(entry.average_processing_time, entry.num_requests === 0 ? 0 : Math.round(entry.processing_time / entry.num_requests));
  }

  // By name and id: that node alone.
  const a = byNode(after.stats, "srv-a");
  const one = await gather<Stats>(client, `$SRV.STATS.caliopen.${a.id}`);
  assert.equal(
    one.map((stats) => stats.id),
    [a.id],
  );
  assert.is(one[0]?.endpoints.length, CONTRACT.length);
});

test("an official client of the protocol (nats.js 2's services client, the package the benchmarks use) lists both nodes", async ({ nats }) => {
  const seed = (await readFile(nats.endpoint.nkey!, "utf8")).trim();
  const nc = await connectV2({ servers: nats.url, authenticator: nkeyAuthenticator(new TextEncoder().encode(seed)) });
  try {
    const client = nc.services.client();
    const found: { name: string; id: string; endpoints: { subject: string }[] }[] = [];
    for await (const info of await client.info("caliopen")) found.push(info);
    assert.is(found.length, 2);
    assert.ok(found.every((info) => info.name === "caliopen" && info.endpoints.length === CONTRACT.length));
    const stats: { id: string }[] = [];
    for await (const entry of await client.stats("caliopen", found[0]?.id)) stats.push(entry);
    assert.equal(
      stats.map((entry) => entry.id),
      [found[0]?.id],
    );
  } finally {
    await nc.close();
  }
});

test("hostile: garbage payloads, no reply subject, unusable reply subjects on $SRV.* leave the node answering", async ({ nats, nodes, client }) => {
  const events: string[] = [];
  for (const node of nodes)
    void (async () => {
      for await (const status of node.nc.status()) events.push(status.type);
    })();
  const long = `_INBOX.${"a".repeat(300)}`;
  const unanswered = client.subscribe(long);
  let leaked = 0;
  void (async () => {
    for await (const _ of unanswered) leaked += 1;
  })();
  const garbage = [new Uint8Array([0xff, 0x00, 0xfe]), encodeJson({ name: "x".repeat(60_000) }), new TextEncoder().encode("{{{{"), new Uint8Array()];
  const subjects = ["PING", "INFO", "STATS"].flatMap((verb) => [`$SRV.${verb}`, `$SRV.${verb}.caliopen`]);
  for (const subject of subjects) {
    for (const payload of garbage) {
      client.publish(subject, payload);
      client.publish(subject, payload, { reply: long });
      client.publish(subject, payload, { reply: "_INBOX.*" });
    }
  }
  // Garbage with a good reply subject is answered as usual: the payload is not read.
  const answered = await gather<Info>(client, "$SRV.INFO", new Uint8Array([0xff, 0xfe]));
  assert.is(answered.length, 2);
  await client.flush();
  await sleep(200);
  assert.is(leaked, 0, "a reply went to an unusable reply subject");
  assert.equal(events, [], "a node's connection was disturbed");
  for (const node of nodes) assert.not.ok(node.nc.isClosed());
  const pings = await gather<Identity>(client, "$SRV.PING");
  assert.is(pings.length, 2);
  unanswered.unsubscribe();
  // The server still counts both nodes as connected.
  const subscribed = (await nats.subscriptions()).filter((sub) => sub.subject === "$SRV.PING");
  assert.is(subscribed.length, 2);
});

test.run();
