// HTTPS: with a certificate and key the API speaks only TLS. A client that trusts the CA is served; one
// that does not is refused by its own TLS check; plain HTTP to the port gets a 400 in the API's error
// body saying to use https://; a connection that never completes its handshake, or trickles its headers
// inside TLS, is closed.

import { readFile } from "node:fs/promises";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { RunningApi } from "../../api/server.ts";
import { makeTestCertificates, type TestCertificates } from "../../scripts/local-servers/tls-certs.ts";
import { type ApiFixture, startApiFixture } from "../helpers/api-fixture.ts";
import { rawRequest } from "../helpers/http-request.ts";
import { silent, trickle } from "../helpers/slow-client.ts";

const test = suite<{ fx: ApiFixture; certs: TestCertificates; ca: string; api: RunningApi; port: number }>("API: TLS");

test.before(async (ctx) => {
  ctx.certs = await makeTestCertificates();
  ctx.ca = await readFile(ctx.certs.ca, "utf8");
  const tls = { cert: await readFile(ctx.certs.serverCert, "utf8"), key: await readFile(ctx.certs.serverKey, "utf8") };
  ctx.fx = await startApiFixture();
  ctx.api = await ctx.fx.another({ tls, timeouts: { headersMs: 1_000, requestMs: 2_000, idleMs: 30_000, keepAliveMs: 1_000 } });
  ctx.port = Number(new URL(ctx.api.url).port);
});
test.after(async (ctx) => {
  await ctx.fx.stop();
  await ctx.certs.remove();
});

test("HTTPS with the CA: served", async ({ fx, api, ca }) => {
  assert.match(api.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const alice = await fx.user("alice");
  const me = await rawRequest(`${api.url}/api/v2/me`, { token: alice.token, ca });
  assert.is(me.status, 200);
  assert.is(me.body.name, "alice");
  const created = await rawRequest(`${api.url}/api/v2/contacts`, { method: "POST", token: alice.token, ca, body: JSON.stringify({ given_name: "Over TLS" }) });
  assert.is(created.status, 201, JSON.stringify(created.body));
});

test("a client that does not trust the certificate refuses it", async ({ api }) => {
  const error = await rawRequest(`${api.url}/api/v2/openapi.json`).then(
    () => null,
    (err: Error) => err,
  );
  assert.ok(error, "the request failed");
  assert.match(error.message, /self[- ]signed|unable to verify|issuer/i);
});

test("plain HTTP to the TLS port: a 400 in the API's error body, never served", async ({ fx, port }) => {
  const bob = await fx.user("bob");
  const answer = await rawRequest(`http://127.0.0.1:${port}/api/v2/me`, { token: bob.token });
  assert.is(answer.status, 400);
  assert.equal(answer.body, { error: "bad_request", message: "this port speaks HTTPS: use an https:// URL" });
});

test("a connection that never starts its handshake is closed", async ({ port }) => {
  assert.ok((await silent(port, 20_000)).closed);
});

test("headers trickled inside TLS: 408 and the connection closed", async ({ port, ca }) => {
  const headers = `GET /api/v2/me HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ${"a".repeat(550)}\r\n\r\n`;
  const result = await trickle(port, headers, 50, { tls: { ca } });
  assert.ok(result.closedEarly, `closed while the client was still sending (sent ${result.sent} of ${headers.length} bytes)`);
  assert.match(result.received, /^HTTP\/1\.1 408 /);
});

test.run();
