// The dashboard without a browser: its page is static, with a strict Content-Security-Policy; its data
// and live stream answer admins only; the stream carries transitions as they happen, and how many
// streams a node and a token may hold, and how many events a stream gets a second, are bounded.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createUser } from "../../actors/accounts/create-user.ts";
import { encodeJson } from "../../runtime/json.ts";
import { sleep, waitFor } from "../../scripts/local-servers/wait.ts";
import { type DashboardNode, startDashboardNode } from "../helpers/dashboard-node.ts";
import { openEventStream } from "../helpers/event-stream-client.ts";
import { rawRequest } from "../helpers/http-request.ts";

const WAIT_MS = 15_000;
const LIMITS = { maxStreams: 3, maxStreamsPerToken: 2, eventsPerSecond: 50, recheckMs: 300 };
const test = suite<{ fx: DashboardNode }>("API: dashboard");

test.before(async (ctx) => {
  ctx.fx = await startDashboardNode("dashboard-node", LIMITS);
});
test.after(async (ctx) => {
  await ctx.fx.stop();
});

const data = (fx: DashboardNode, path: string) => `${fx.url}/dashboard/api/${path}`;
const DATA_PATHS = ["nodes", "actors", "actors?kind=contact&state=idle", "actor?kind=contact&key=x", "sync", "deadletters", "events"];

test("the page, its script and style need no token, and forbid inline code and framing", async ({ fx }) => {
  const page = await rawRequest(`${fx.url}/dashboard`);
  assert.is(page.status, 200);
  assert.match(String(page.headers["content-type"]), /^text\/html/);
  const csp = String(page.headers["content-security-policy"]);
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.not.match(csp, /unsafe/);
  assert.is(page.headers["x-content-type-options"], "nosniff");
  const html = String(page.body);
  assert.not.match(html, /<script(?![^>]*\ssrc=)/, "no inline script");
  assert.not.match(html, /\son[a-z]+=/i, "no inline event handler");
  assert.not.match(html, /https?:\/\//, "nothing from elsewhere");
  const script = await rawRequest(`${fx.url}/dashboard/dashboard.js`);
  assert.is(script.status, 200);
  assert.match(String(script.headers["content-type"]), /^text\/javascript/);
  assert.is(script.headers["x-content-type-options"], "nosniff");
  assert.not.match(String(script.body), /innerHTML|outerHTML|insertAdjacentHTML|document\.write/, "data is only ever set as text");
  assert.is((await rawRequest(`${fx.url}/dashboard/dashboard.css`)).status, 200);
});

test("every data route and the event stream refuse no token (401) and a user who is not an admin (403)", async ({ fx }) => {
  for (const [i, path] of DATA_PATHS.entries()) {
    const none = await rawRequest(data(fx, path), { localAddress: `127.0.1.${i + 1}` });
    assert.is(none.status, 401, `${path} without a token`);
    assert.is(none.headers["x-content-type-options"], "nosniff", "refusals carry the headers too");
    assert.is((await rawRequest(data(fx, path), { token: fx.user.token })).status, 403, `${path} with a user's token`);
    assert.is((await rawRequest(data(fx, path), { token: "cal_not_a_token", localAddress: `127.0.2.${i + 1}` })).status, 401, `${path} with a wrong token`);
  }
});

test("an admin sees the node with its shards, the actors, and an actor's transitions live", async ({ fx }) => {
  const nodes = await rawRequest(data(fx, "nodes"), { token: fx.admin.token });
  assert.is(nodes.status, 200);
  assert.is(nodes.headers["cache-control"], "no-store");
  const [node] = nodes.body.nodes;
  assert.is(node.node, fx.nodeId);
  assert.equal(node.shards, [0, 1, 2, 3, 4, 5, 6, 7], "a lone node owns every shard");

  const stream = await openEventStream(data(fx, "events"), fx.admin.token);
  try {
    assert.is(stream.status, 200);
    assert.match(String(stream.headers["content-type"]), /^text\/event-stream/);
    assert.is(stream.headers["x-content-type-options"], "nosniff");
    await waitFor("the nodes on the stream", () => stream.events.some((e) => e.event === "nodes"), WAIT_MS);
    fx.nc.publish("contactAction", encodeJson({ order: "contact_update", contact_id: fx.admin.contact_id, user_id: fx.admin.user_id }));
    await waitFor(
      "the contact actor done with the order, on the stream",
      () =>
        stream.events.some(
          (e) =>
            e.event === "transition" && e.data.kind === "contact" && e.data.key === fx.admin.contact_id && e.data.from === "working" && e.data.to === "idle",
        ),
      WAIT_MS,
    );
  } finally {
    stream.close();
  }
  const actors = await rawRequest(data(fx, "actors?kind=contact&state=idle"), { token: fx.admin.token });
  assert.is(actors.status, 200);
  assert.ok(
    actors.body.actors.some((a: { key: string; statePath: string }) => a.key === fx.admin.contact_id && a.statePath === "idle"),
    JSON.stringify(actors.body),
  );
  assert.is((await rawRequest(data(fx, "actors?kind=contact&state=nosuchstate"), { token: fx.admin.token })).body.actors.length, 0);
  const actor = await rawRequest(data(fx, `actor?kind=contact&key=${fx.admin.contact_id}`), { token: fx.admin.token });
  assert.is(actor.status, 200);
  assert.is(actor.body.node, fx.nodeId);
  assert.ok(actor.body.actor.context !== undefined);
  assert.is((await rawRequest(data(fx, "actor?kind=contact&key=nobody"), { token: fx.admin.token })).status, 404);
  assert.equal((await rawRequest(data(fx, "sync"), { token: fx.admin.token })).body, { accounts: [], total: 0 });
  assert.is((await rawRequest(data(fx, "deadletters"), { token: fx.admin.token })).status, 200);
});

test("streams are bounded per token and per node; a closed one frees its place", async ({ fx }) => {
  const second = (await createUser(fx.store, { name: "root2", admin: true })).token;
  const third = (await createUser(fx.store, { name: "root3", admin: true })).token;
  const open = [await openEventStream(data(fx, "events"), fx.admin.token), await openEventStream(data(fx, "events"), fx.admin.token)];
  try {
    assert.equal(
      open.map((s) => s.status),
      [200, 200],
    );
    const overToken = await openEventStream(data(fx, "events"), fx.admin.token);
    assert.is(overToken.status, 429, "a third stream for one token");
    assert.match(String((await overToken.refusal)?.message), /holds 2 dashboard event streams/);
    open.push(await openEventStream(data(fx, "events"), second));
    assert.is(open[2]?.status, 200, "another token still may");
    const overNode = await openEventStream(data(fx, "events"), third);
    assert.is(overNode.status, 429, "a fourth stream on the node");
    assert.match(String((await overNode.refusal)?.message), /at most 3 dashboard event streams/);
    open.shift()?.close();
    let again = overNode;
    await waitFor(
      "a place freed by the closed stream",
      async () => {
        again = await openEventStream(data(fx, "events"), third);
        if (again.status !== 200) await again.refusal;
        return again.status === 200;
      },
      WAIT_MS,
      100,
    );
    open.push(again);
  } finally {
    for (const stream of open) stream.close();
  }
});

test("a flood of transitions is sent at the stream's rate: one actor's coalesced to the latest, the excess dropped and counted", async ({ fx }) => {
  await sleep(300); // the previous test's streams are gone
  const stream = await openEventStream(data(fx, "events"), fx.admin.token);
  try {
    assert.is(stream.status, 200);
    await waitFor("the nodes on the stream", () => stream.events.some((e) => e.event === "nodes"), WAIT_MS);
    const transition = (key: string, to: string) =>
      encodeJson({ kind: "flood", key, node: "elsewhere", from: null, to, event: "x", at: new Date().toISOString() });
    for (let i = 0; i < 500; i++) fx.nc.publish("caliopen.debug.transitions.flood.one", transition("one", `s${i}`));
    for (let i = 0; i < 1_000; i++) fx.nc.publish(`caliopen.debug.transitions.flood.k${i}`, transition(`k${i}`, "s"));
    await fx.nc.flush();
    await waitFor("the latest state of the coalesced actor", () => stream.events.some((e) => e.data.key === "one" && e.data.to === "s499"), WAIT_MS);
    await waitFor("the count of dropped events", () => stream.events.some((e) => e.event === "dropped"), WAIT_MS);
    const ones = stream.events.filter((e) => e.data.key === "one");
    assert.ok(ones.length < 100, `${ones.length} events for one actor flooded with 500`);
    assert.ok(Number(ones.at(-1)?.data.coalesced) > 0, "the latest says how many it replaced");
    const dropped = stream.events.filter((e) => e.event === "dropped").reduce((sum, e) => sum + Number(e.data.count), 0);
    const others = stream.events.filter((e) => e.event === "transition" && e.data.key !== "one").length;
    assert.ok(dropped > 0 && others + dropped >= 1_000 - 1, `${others} sent and ${dropped} dropped of 1,000`);
  } finally {
    stream.close();
  }
});

test("a stream ends soon after its token is revoked, or its user disabled", async ({ fx }) => {
  await sleep(300); // the previous test's stream is gone
  const revoked = await createUser(fx.store, { name: "root4", admin: true });
  const disabled = await createUser(fx.store, { name: "root5", admin: true });
  const streams = [await openEventStream(data(fx, "events"), revoked.token), await openEventStream(data(fx, "events"), disabled.token)];
  try {
    assert.equal(
      streams.map((s) => s.status),
      [200, 200],
    );
    await fx.store.tokens.revokeAll(revoked.user.user_id);
    await fx.store.users.setDisabled(disabled.user.user_id, true);
    await Promise.all(streams.map((stream) => waitFor("the stream's end", () => stream.ended, WAIT_MS)));
  } finally {
    for (const stream of streams) stream.close();
  }
});

test.run();
