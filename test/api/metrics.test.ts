// GET /metrics on the API's listener: the node's figures for an admin's token only (the API may face
// the Internet); no token, a wrong one or a user's is refused, and wrong ones spend the address's budget.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createUser } from "../../actors/accounts/create-user.ts";
import { openStore } from "../../actors/store/store.ts";
import { DEFAULT_HTTP_SETTINGS } from "../../api/http-settings.ts";
import { METRIC_NAMES } from "../../runtime/metrics.ts";
import { Subjects } from "../../runtime/subjects.ts";
import { caliopenServices } from "../../supervisors/caliopen-services.ts";
import type { RunningNode } from "../../supervisors/node.ts";
import { rawRequest } from "../helpers/http-request.ts";
import { parseMetrics } from "../helpers/metrics-text.ts";
import { startTestNats, type TestNats } from "../helpers/nats-server.ts";
import { startTestNode, testCaliopenConfig } from "../helpers/test-node.ts";

const test = suite<{ nats: TestNats; node: RunningNode; url: string; admin: string; user: string }>("API: metrics");

/** Bad tokens an address may send a minute. */
const PER_IP = 3;

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  const config = testCaliopenConfig({
    api: { host: "127.0.0.1", port: 0, http: { ...DEFAULT_HTTP_SETTINGS, rateLimits: { perToken: 600, perIp: PER_IP } } },
  });
  let apiUrl = "";
  ctx.node = await startTestNode(ctx.nats.endpoint, caliopenServices(config, { onApiStarted: (url) => (apiUrl = url) }), { nodeId: "api-metrics" });
  ctx.url = `${apiUrl}/metrics`;
  const client = await ctx.nats.connect();
  const store = await openStore({ nc: client, subjects: new Subjects(""), secrets: config.secrets });
  ctx.admin = (await createUser(store, { name: "root", admin: true })).token;
  ctx.user = (await createUser(store, { name: "alice" })).token;
  await client.close();
});
test.after(async (ctx) => {
  await ctx.node.shutdown("test over");
  await ctx.nats.stop();
});

test("an admin's token reads the node's metrics, in the exposition format", async ({ url, admin }) => {
  const answer = await rawRequest(url, { token: admin });
  assert.is(answer.status, 200);
  assert.match(String(answer.headers["content-type"]), /^text\/plain; version=0\.0\.4/);
  const metrics = parseMetrics(String(answer.body));
  assert.is(metrics.types.get(METRIC_NAMES.ordersReceived), "counter");
  assert.is(metrics.types.get(METRIC_NAMES.actors), "gauge");
  assert.ok(metrics.samples.some((s) => s.name === METRIC_NAMES.actors && s.labels.kind === "inbound"));
});

test("no token, an unknown one, or a user's who is not an admin is refused", async ({ url, user }) => {
  assert.is((await rawRequest(url, { localAddress: "127.0.0.2" })).status, 401);
  assert.is((await rawRequest(url, { token: user, localAddress: "127.0.0.3" })).status, 403);
  assert.is((await rawRequest(`${url}?x=1`, { token: "tok_not_a_token", localAddress: "127.0.0.4" })).status, 401);
});

test("guessing tokens at /metrics spends the address's budget like anywhere in the API", async ({ url, admin }) => {
  const guesser = { localAddress: "127.0.0.5" };
  for (let i = 0; i < PER_IP; i++) assert.is((await rawRequest(url, { ...guesser, token: `tok_guess_${i}` })).status, 401);
  const refused = await rawRequest(url, { ...guesser, token: admin });
  assert.is(refused.status, 429, "even a right token, once the address is over its budget");
  assert.is((await rawRequest(url, { token: admin })).status, 200, "others are not affected");
});

test("the metrics route is not in the OpenAPI document", async ({ url, admin }) => {
  const answer = await rawRequest(url.replace("/metrics", "/api/v2/openapi.json"), { token: admin });
  assert.is(answer.status, 200);
  assert.not.ok(Object.keys((answer.body as { paths: Record<string, unknown> }).paths).includes("/metrics"));
});

test.run();
