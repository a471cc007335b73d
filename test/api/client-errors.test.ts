// Requests refused by the HTTP parser, before any route: headers over Node's 16 KiB and malformed HTTP
// are answered in the API's error body and the connection is closed; the API keeps serving.

import { connect } from "node:net";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { type ApiFixture, startApiFixture } from "../helpers/api-fixture.ts";

const test = suite<{ fx: ApiFixture; port: number }>("API: client errors");

test.before(async (ctx) => {
  ctx.fx = await startApiFixture();
  ctx.port = Number(new URL(ctx.fx.api.url).port);
});
test.after(async (ctx) => {
  await ctx.fx.stop();
});

/** Sends raw bytes; resolves with what came back once the server closes the connection. */
function exchange(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let received = "";
    const socket = connect({ host: "127.0.0.1", port }, () => socket.write(request));
    socket.on("data", (chunk: Buffer) => (received += chunk.toString("utf8")));
    socket.on("error", () => undefined);
    socket.on("close", () => resolve(received));
    setTimeout(() => reject(new Error(`no close; got ${received}`)), 10_000).unref();
  });
}

function errorOf(answer: string): { error: string; message: string } {
  return JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4)) as { error: string; message: string };
}

test("headers over 16 KiB: 431 in the error body", async ({ fx, port }) => {
  const answer = await exchange(port, `GET /api/v2/me HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: ${"a".repeat(20_000)}\r\n\r\n`);
  assert.match(answer, /^HTTP\/1\.1 431 /);
  assert.equal(errorOf(answer), { error: "headers_too_large", message: "the request's headers are too large" });
  assert.is((await fx.call("GET", "/api/v2/openapi.json", null)).status, 200);
});

test("malformed HTTP: 400 in the error body", async ({ fx, port }) => {
  const answer = await exchange(port, "HELLO THERE\r\n\r\n");
  assert.match(answer, /^HTTP\/1\.1 400 /);
  assert.equal(errorOf(answer), { error: "bad_request", message: "malformed HTTP request" });
  assert.is((await fx.call("GET", "/api/v2/openapi.json", null)).status, 200);
});

test.run();
