// Timeouts at the API's edge: a client that sends its headers a byte at a time (slowloris), or its body
// a byte at a time, or nothing at all, is answered 408 in the API's error body and disconnected while
// it is still sending, and other clients are served meanwhile. Each byte arrives well within the idle
// timeout: only the headers and request timeouts can end these connections.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { RunningApi } from "../../api/server.ts";
import { sleep } from "../../scripts/local-servers/wait.ts";
import { type ApiFixture, startApiFixture } from "../helpers/api-fixture.ts";
import { silent, type Trickle, trickle } from "../helpers/slow-client.ts";

const test = suite<{ fx: ApiFixture; api: RunningApi; port: number }>("API: timeouts");

test.before(async (ctx) => {
  ctx.fx = await startApiFixture();
  ctx.api = await ctx.fx.another({ timeouts: { headersMs: 1_000, requestMs: 2_000, idleMs: 30_000, keepAliveMs: 1_000 } });
  ctx.port = Number(new URL(ctx.api.url).port);
});
test.after(async (ctx) => {
  await ctx.fx.stop();
});

/** A byte every 50 ms: the whole text would take this many seconds. */
const EVERY_MS = 50;

function assertTimedOut(result: Trickle, total: number): void {
  assert.ok(result.closedEarly, `the server closed the connection while the client was still sending (sent ${result.sent} of ${total} bytes)`);
  assert.match(result.received, /^HTTP\/1\.1 408 /);
  const body = JSON.parse(result.received.slice(result.received.indexOf("\r\n\r\n") + 4)) as { error: string; message: string };
  assert.is(body.error, "request_timeout");
  assert.match(body.message, /did not arrive in time/);
}

test("headers sent a byte at a time: 408 and the connection closed, while another client is served", async ({ fx, api, port }) => {
  const alice = await fx.user("alice");
  // 600 bytes at 50 ms a byte: half a minute of headers if nobody stopped it.
  const headers = `GET /api/v2/me HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ${"a".repeat(550)}\r\n\r\n`;
  const slow = trickle(port, headers, EVERY_MS);
  await sleep(200);
  const meanwhile = await fetch(`${api.url}/api/v2/me`, { headers: { authorization: `Bearer ${alice.token}` } });
  assert.is(meanwhile.status, 200);
  assertTimedOut(await slow, headers.length);
});

test("a body sent a byte at a time: 408 and the connection closed, nothing stored", async ({ fx, port }) => {
  const bob = await fx.user("bob");
  const body = JSON.stringify({ given_name: "b".repeat(500) });
  const headers = `POST /api/v2/contacts HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${bob.token}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
  const before = (await fx.store.contacts.list(bob.user_id)).total;
  const result = await trickle(port, body, EVERY_MS, { prefix: headers });
  assertTimedOut(result, body.length);
  assert.is((await fx.store.contacts.list(bob.user_id)).total, before);
});

test("a connection that sends nothing is closed", async ({ port }) => {
  const result = await silent(port, 20_000);
  assert.ok(result.closed, "closed by the server");
});

test.run();
