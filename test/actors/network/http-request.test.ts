// The HTTP requests of WKD lookups, whose hosts come from contacts' addresses: real loopback web servers
// behind a destination policy that admits exactly them. Every hop is checked: a redirect to cloud
// metadata, to loopback, to the platform's NATS is refused before any connection; a redirect to an
// admitted server is followed, a loop is cut. Plain HTTP needs the operator's +cleartext. A name that
// resolves elsewhere the second time (DNS rebinding) does not move the connection. The operator's key
// server needs no policy.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { parseAllowedDestinations } from "../../../actors/network/allowed-destinations.ts";
import { DestinationPolicy, type ProtectedService, type Resolver } from "../../../actors/network/destination-policy.ts";
import { HttpFailure, httpRequest, MAX_REDIRECTS } from "../../../actors/network/http-request.ts";
import { freePort } from "../../../scripts/local-servers/free-port.ts";
import { startWebServer, type TestWebServer, type WebServerOptions } from "../../helpers/wkd-server.ts";

/** Serves `/<any host>/key` with the bytes "KEY"; everything else is a 404. */
async function keyServer(options: WebServerOptions = {}): Promise<TestWebServer> {
  const root = await mkdtemp(join(tmpdir(), "caliopen-http-request-"));
  await writeFile(join(root, "key"), "KEY");
  const server = await startWebServer(() => root, options);
  return {
    ...server,
    stop: async () => {
      await server.stop();
      await rm(root, { recursive: true, force: true });
    },
  };
}

const hostPort = (server: TestWebServer) => new URL(server.origin).host;

function policy(allow: string[], platform: ProtectedService[] = [], resolve?: Resolver): DestinationPolicy {
  return new DestinationPolicy({ allow: parseAllowedDestinations(allow.join(",")), ca: [], ...(resolve && { resolve }) }, () => platform);
}

async function failure(promise: Promise<unknown>): Promise<HttpFailure> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof HttpFailure) return err;
    throw err;
  }
  throw new Error("the request succeeded");
}

test("every redirect is checked before it is followed: cloud metadata, loopback, the platform's NATS are refused; an admitted server is reached; a loop is cut", async () => {
  const target = await keyServer();
  const natsPort = await freePort();
  const targets: Record<string, string> = {
    metadata: "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    loopback: `http://localhost:${await freePort()}/`,
    nats: `http://127.0.0.1:${natsPort}/`,
    admitted: `${target.origin}/example.org/key`,
  };
  const redirector: TestWebServer = await startWebServer(() => null, {
    redirect: (host) => (host === "loop" ? `${redirector.origin}/loop/again` : (targets[host] ?? null)),
  });
  // Loopback is admitted as a network (with +cleartext): the platform's NATS port there is still refused.
  const destinations = policy(
    ["127.0.0.0/8+cleartext", `${hostPort(redirector)}+cleartext`, `${hostPort(target)}+cleartext`],
    [{ what: "a NATS server of the platform", host: "127.0.0.1", port: natsPort }],
  );
  try {
    const metadata = await failure(httpRequest(`${redirector.origin}/metadata/key?l=ann`, { timeoutMs: 3_000, destinations }));
    assert.match(
      metadata.message,
      /redirected, then web server 169\.254\.169\.254:80 is not an allowed destination: 169\.254\.169\.254 is a link-local address/,
    );
    assert.not.ok(metadata.hostNotFound);
    const nats = await failure(httpRequest(`${redirector.origin}/nats/key`, { timeoutMs: 3_000, destinations }));
    assert.match(nats.message, /redirected, then web server 127\.0\.0\.1:\d+ is not an allowed destination: it is a NATS server of the platform/);
    const strict = policy([`${hostPort(redirector)}+cleartext`]);
    const loopback = await failure(httpRequest(`${redirector.origin}/loopback/key`, { timeoutMs: 3_000, destinations: strict }));
    assert.match(loopback.message, /localhost resolves to a loopback address/);

    const followed = await httpRequest(`${redirector.origin}/admitted/key`, { timeoutMs: 3_000, destinations });
    assert.is(followed.status, 200);
    assert.is(Buffer.from(followed.bytes).toString(), "KEY");
    const loop = await failure(httpRequest(`${redirector.origin}/loop/key`, { timeoutMs: 3_000, destinations }));
    assert.match(loop.message, new RegExp(`more than ${MAX_REDIRECTS} redirects`));
    assert.is(redirector.requests.filter((request) => request.host === "loop").length, MAX_REDIRECTS + 1, "the first request and five redirects");
  } finally {
    await redirector.stop();
    await target.stop();
  }
});

test("plain HTTP to a server named by a contact needs the operator's +cleartext; a server the list does not name is refused before any connection", async () => {
  const server = await keyServer();
  try {
    const refused = await failure(httpRequest(`${server.origin}/x/key`, { timeoutMs: 3_000, destinations: policy([hostPort(server)]) }));
    assert.match(refused.message, /plain HTTP is refused for a server named by a user or contact \(HTTPS required\)/);
    const unlisted = await failure(httpRequest(`${server.origin}/x/key`, { timeoutMs: 3_000, destinations: policy([]) }));
    assert.match(unlisted.message, /127\.0\.0\.1 is a loopback address/);
    assert.is(server.requests.length, 0, "neither reached the server");
    const excepted = await httpRequest(`${server.origin}/x/key`, { timeoutMs: 3_000, destinations: policy([`${hostPort(server)}+cleartext`]) });
    assert.is(excepted.status, 200);
    // The operator's own servers (the key server) go without a policy.
    assert.is((await httpRequest(`${server.origin}/x/key`, { timeoutMs: 3_000 })).status, 200);
  } finally {
    await server.stop();
  }
});

test("DNS rebinding: the name is resolved once, checked, and the request goes to that address with the name in its Host header", async () => {
  const pinned = await keyServer({ listen: { host: "127.0.0.2" } });
  const port = Number(new URL(pinned.origin).port);
  // The same port on 127.0.0.1, where the second answer of DNS points.
  const elsewhere = await keyServer({ listen: { host: "127.0.0.1", port } });
  let asked = 0;
  const resolve: Resolver = async (host) => {
    if (host !== "rebind.example") throw Object.assign(new Error(`ENOTFOUND ${host}`), { code: "ENOTFOUND" });
    return asked++ === 0 ? ["127.0.0.2"] : ["127.0.0.1"];
  };
  try {
    const answer = await httpRequest(`http://rebind.example:${port}/x/key`, {
      timeoutMs: 3_000,
      destinations: policy(["127.0.0.2/32+cleartext"], [], resolve),
    });
    assert.is(answer.status, 200);
    assert.is(asked, 1, "resolved once");
    assert.equal(
      pinned.requests.map((request) => request.hostHeader),
      [`rebind.example:${port}`],
    );
    assert.is(elsewhere.requests.length, 0, "nothing reached the address of the second answer");
    const again = await failure(
      httpRequest(`http://rebind.example:${port}/x/key`, { timeoutMs: 3_000, destinations: policy(["127.0.0.2/32+cleartext"], [], resolve) }),
    );
    assert.match(again.message, /rebind\.example resolves to a loopback address/, "the next request checks the new answer");
    assert.is(elsewhere.requests.length, 0);
  } finally {
    await pinned.stop();
    await elsewhere.stop();
  }
});

test("a name that does not exist is 'host not found' (for the WKD: no key there), not a refusal", async () => {
  const resolve: Resolver = async (host) => Promise.reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: "ENOTFOUND" }));
  const missing = await failure(
    httpRequest("https://openpgpkey.nowhere.example/.well-known/openpgpkey/nowhere.example/hu/x", { timeoutMs: 3_000, destinations: policy([], [], resolve) }),
  );
  assert.ok(missing.hostNotFound);
});

test.run();
