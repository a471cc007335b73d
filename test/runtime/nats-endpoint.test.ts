// NATS settings with the `nats` CLI's names: read from the environment, turned into nats.js options,
// and used against real nats-servers that require a user and password, a token, a .creds file
// (operator mode) or TLS; credentials never show in what a node reports.

import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeAccount, encodeOperator, encodeUser, fmtCreds } from "@nats-io/jwt";
import { createAccount, createOperator, createUser } from "@nats-io/nkeys";
import { connect } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { connectToNats } from "../../runtime/connection.ts";
import { decodeJson } from "../../runtime/json.ts";
import { silentLogger } from "../../runtime/logger.ts";
import { explainConnectError, type NatsEndpoint, natsConnectOptions, natsEndpointEnv, natsEndpointFromEnv, redactUrl } from "../../runtime/nats-endpoint.ts";
import { StartupError } from "../../runtime/startup-error.ts";
import { makeTestCertificates } from "../../scripts/local-servers/tls-certs.ts";
import { startTestNats } from "../helpers/nats-server.ts";
import { startTestNode } from "../helpers/test-node.ts";

const test = suite("NATS endpoint settings");
const PASSWORD = "p@ss word:with/odd chars";

test("the environment's NATS_* settings, and credentials written in the URL", () => {
  assert.is(natsEndpointFromEnv({}), undefined);
  assert.equal(natsEndpointFromEnv({ NATS_URL: "nats://a:4222, nats://b:4222", NATS_NKEY: "/k/node.nk", NATS_INBOX_PREFIX: "_INBOX.peer" }), {
    url: "nats://a:4222,nats://b:4222",
    nkey: "/k/node.nk",
    inboxPrefix: "_INBOX.peer",
  });
  assert.equal(natsEndpointFromEnv({ NATS_URL: `nats://alice:${encodeURIComponent(PASSWORD)}@a:4222,nats://alice:${encodeURIComponent(PASSWORD)}@b:4222` }), {
    url: "nats://a:4222,nats://b:4222",
    user: "alice",
    password: PASSWORD,
  });
  assert.equal(natsEndpointFromEnv({ NATS_URL: "tls://s3cr3t-token@a:4222" }), { url: "tls://a:4222", token: "s3cr3t-token" });
  // Explicit settings win over the URL's.
  assert.equal(natsEndpointFromEnv({ NATS_URL: "nats://u:p@a:4222", NATS_USER: "v", NATS_PASSWORD: "q" }), { url: "nats://a:4222", user: "v", password: "q" });
  const refused = (env: NodeJS.ProcessEnv, pattern: RegExp) =>
    assert.throws(
      () => natsEndpointFromEnv(env),
      (err: Error) => err instanceof StartupError && pattern.test(err.message),
    );
  refused({ NATS_URL: "nats://a", NATS_CREDS: "/c", NATS_TOKEN: "t" }, /NATS_CREDS and NATS_TOKEN are both set/);
  refused({ NATS_URL: "nats://a", NATS_PASSWORD: "p" }, /NATS_PASSWORD is set without NATS_USER/);
  refused({ NATS_URL: "nats://a", NATS_CERT: "/c.pem" }, /NATS_CERT and NATS_KEY go together/);
  refused({ NATS_URL: "nats://a", NATS_INBOX_PREFIX: "_INBOX.>" }, /NATS_INBOX_PREFIX must be subject tokens/);
  refused({ NATS_NKEY: "/k" }, /NATS_NKEY is set but NATS_URL is not/);
  const endpoint: NatsEndpoint = { url: "tls://a:4222", nkey: "/k", ca: "/ca.pem" };
  assert.equal(natsEndpointFromEnv(natsEndpointEnv(endpoint)), endpoint, "natsEndpointEnv is the inverse");
  assert.is(redactUrl("nats://u:p@a:4222,nats://tok@b:4222"), "nats://***@a:4222,nats://***@b:4222");
});

test("a missing or malformed credential file is named by its setting, before any connection", async () => {
  const dir = await mkdtemp(join(tmpdir(), "caliopen-endpoint-"));
  await writeFile(join(dir, "not-a-seed"), "hello\n");
  await writeFile(join(dir, "not-creds"), "hello\n");
  const fails = async (endpoint: NatsEndpoint, pattern: RegExp) => {
    const error = await natsConnectOptions(endpoint).then(
      () => null,
      (err: Error) => err,
    );
    assert.instance(error, StartupError);
    assert.match(error!.message, pattern);
  };
  await fails({ url: "nats://a", nkey: join(dir, "missing") }, /^NATS_NKEY \S+missing: cannot read it \(no such file\)$/);
  await fails({ url: "nats://a", nkey: join(dir, "not-a-seed") }, /not a user nkey seed/);
  await fails({ url: "nats://a", creds: join(dir, "not-creds") }, /^NATS_CREDS \S+: not a NATS credentials file/);
  await fails({ url: "nats://a", ca: join(dir, "missing-ca.pem") }, /^NATS_CA \S+: cannot read it/);
  const seed = new TextDecoder().decode(createUser().getSeed());
  await writeFile(join(dir, "seed.nk"), `# a comment\n${seed}\n`);
  const options = await natsConnectOptions({ url: "tls://a:1,nats://b:2", nkey: join(dir, "seed.nk") });
  assert.equal(options.servers, ["nats://a:1", "nats://b:2"]);
  assert.ok(options.tls !== undefined && options.tls !== null, "a tls:// URL requires TLS");
  assert.type(options.authenticator, "function");
});

test("a user and password, and a token, against real servers; what the node reports never holds them", async () => {
  const users = await startTestNats({
    security: {
      config: `authorization {\n  users = [ { user: "alice", password: ${JSON.stringify(PASSWORD)} } ]\n}\n`,
      client: { user: "alice", password: PASSWORD },
    },
  });
  const tokens = await startTestNats({ security: { config: `authorization {\n  token: "s3cr3t-token"\n}\n`, client: { token: "s3cr3t-token" } } });
  try {
    const inUrl = natsEndpointFromEnv({ NATS_URL: users.url.replace("nats://", `nats://alice:${encodeURIComponent(PASSWORD)}@`) })!;
    const node = await startTestNode(inUrl, { families: [], bindings: () => ({}) }, { nodeId: "password-node" });
    try {
      const reply = await node.nc.request("caliopen.debug.nodes", new Uint8Array(), { timeout: 3_000 });
      const text = new TextDecoder().decode(reply.data);
      assert.not.ok(text.includes(PASSWORD) || text.includes(encodeURIComponent(PASSWORD)), "the password is not in the debug output");
      const nats = (decodeJson(reply.data) as { ok: true; value: { nats: { auth: string; tls: boolean; url: string } } }).value.nats;
      assert.equal([nats.auth, nats.tls, nats.url], ["user", false, users.url]);
    } finally {
      await node.shutdown("test over");
    }
    const nc = await connectToNats({
      endpoint: natsEndpointFromEnv({ NATS_URL: tokens.url, NATS_TOKEN: "s3cr3t-token" })!,
      name: "token",
      logger: silentLogger(),
    });
    await nc.close();
    const wrong = await connectToNats({ endpoint: { url: tokens.url, token: "guess" }, name: "token", logger: silentLogger() }).then(
      () => "connected",
      (err: Error) => err.message,
    );
    assert.match(wrong, /refused the connection: authorization violation \(the server refused our token \(NATS_TOKEN\)\)/);
    assert.not.match(wrong, /guess/);
  } finally {
    await users.stop();
    await tokens.stop();
  }
});

test("TLS: a server with mutual TLS admits a client with a certificate of its CA, and refuses others in one clear line", async () => {
  const certs = await makeTestCertificates();
  const tls = `tls {\n  cert_file: ${JSON.stringify(certs.serverCert)}\n  key_file: ${JSON.stringify(certs.serverKey)}\n  ca_file: ${JSON.stringify(certs.ca)}\n  verify: true\n}\n`;
  const seedDir = await mkdtemp(join(tmpdir(), "caliopen-endpoint-"));
  const seed = createUser();
  await writeFile(join(seedDir, "u.nk"), new TextDecoder().decode(seed.getSeed()), { mode: 0o600 });
  const client = { nkey: join(seedDir, "u.nk"), ca: certs.ca, cert: certs.clientCert, key: certs.clientKey };
  const nats = await startTestNats({ security: { config: `authorization { users = [ { nkey: "${seed.getPublicKey()}" } ] }\n${tls}`, client, tls: true } });
  try {
    assert.match(nats.url, /^tls:\/\//);
    const nc = await connectToNats({ endpoint: nats.endpoint, name: "tls", logger: silentLogger() });
    assert.ok(nc.info?.tls_required, "the connection is TLS");
    await nc.close();
    const attempt = (endpoint: NatsEndpoint) =>
      connectToNats({ endpoint, name: "tls", logger: silentLogger(), connectTimeoutMs: 3_000 }).then(
        async (connection) => {
          await connection.close();
          return "connected";
        },
        (err: Error) => err.message,
      );
    // Without our CA the server's certificate is not trusted; with another CA's client certificate, we are not.
    const { ca: _ca, ...withoutCa } = nats.endpoint;
    assert.match(await attempt(withoutCa), /^cannot connect to NATS at tls:\/\/127\.0\.0\.1:\d+: TLS failed: .*\(check NATS_CA, NATS_CERT and NATS_KEY\)$/);
    assert.is.not(await attempt({ ...nats.endpoint, cert: certs.strangerCert, key: certs.strangerKey }), "connected");
    assert.is.not(await attempt({ url: nats.url, nkey: client.nkey, ca: certs.ca }), "connected");
    // A plain client is told TLS is required, not left waiting.
    const plain = await connect({ servers: nats.url.replace("tls://", "nats://"), timeout: 3_000 }).then(
      async (connection) => {
        await connection.close();
        return "connected";
      },
      (err: Error) => explainConnectError({ url: nats.url }, err),
    );
    assert.is.not(plain, "connected");
  } finally {
    await nats.stop();
    await certs.remove();
  }
});

test("a .creds file (user JWT and nkey seed) against a nats-server in operator mode; a user of another account is refused", async () => {
  const operator = createOperator();
  const account = createAccount();
  const operatorJwt = await encodeOperator("caliopen-test", operator);
  // An account with JetStream, as a node needs it.
  const unlimited = { subs: -1, data: -1, payload: -1 };
  const accountLimits = {
    ...unlimited,
    imports: -1,
    exports: -1,
    wildcards: true,
    conn: -1,
    leaf: -1,
    mem_storage: -1,
    disk_storage: -1,
    streams: -1,
    consumer: -1,
  };
  const accountJwt = await encodeAccount("caliopen", account, { limits: accountLimits }, { signer: operator });
  // JetStream in operator mode needs a system account.
  const system = createAccount();
  const systemJwt = await encodeAccount("SYS", system, {}, { signer: operator });
  const config = [
    `operator: ${operatorJwt}`,
    `system_account: ${system.getPublicKey()}`,
    "resolver: MEMORY",
    `resolver_preload: {\n  ${account.getPublicKey()}: ${accountJwt}\n  ${system.getPublicKey()}: ${systemJwt}\n}`,
  ].join("\n");
  const dir = await mkdtemp(join(tmpdir(), "caliopen-creds-"));
  const credsFile = async (name: string, issuer: ReturnType<typeof createAccount>) => {
    const user = createUser();
    const jwt = await encodeUser(name, user, issuer, unlimited);
    const file = join(dir, `${name}.creds`);
    await writeFile(file, fmtCreds(jwt, user), { mode: 0o600 });
    return file;
  };
  const creds = await credsFile("node", account);
  const nats = await startTestNats({ security: { config, client: { creds } } });
  try {
    const node = await startTestNode(
      natsEndpointFromEnv({ NATS_URL: nats.url, NATS_CREDS: creds })!,
      { families: [], bindings: () => ({}) },
      { nodeId: "creds-node" },
    );
    const reply = decodeJson((await node.nc.request("caliopen.debug.nodes", new Uint8Array(), { timeout: 3_000 })).data);
    assert.is((reply as { ok: true; value: { nats: { auth: string } } }).value.nats.auth, "creds");
    await node.shutdown("test over");
    const stranger = await credsFile("stranger", createAccount());
    const refused = await connectToNats({ endpoint: { url: nats.url, creds: stranger }, name: "stranger", logger: silentLogger() }).then(
      () => "connected",
      (err: Error) => err.message,
    );
    assert.match(refused, /refused the connection: authorization violation \(the server refused our credentials file \(NATS_CREDS\)\)/);
  } finally {
    await nats.stop();
  }
});

test.run();
