// `npm start` as a user runs it: a real process, an embedded nats-server, signals, clear errors.

import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdtemp, readFile, stat, symlink, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createUser } from "@nats-io/nkeys";
import { connect } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { decodeJson } from "../../runtime/json.ts";
import { natsConnectOptions } from "../../runtime/nats-endpoint.ts";
import { SecretBox } from "../../runtime/secret-box.ts";
import { freePort } from "../../scripts/local-servers/free-port.ts";
import { waitFor } from "../../scripts/local-servers/wait.ts";
import { startCli } from "../helpers/cli-process.ts";
import { startTestNats } from "../helpers/nats-server.ts";
import { repeatedKeys } from "../helpers/repeated-keys.ts";

const test = suite("start-node script");
const root = new URL("../..", import.meta.url).pathname;

interface Started {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function startScript(env: Record<string, string>): Started {
  const child = spawn(process.execPath, ["--import", "tsx", "scripts/start-node.ts"], {
    cwd: root,
    // JSON whatever the shell running the tests sets: the tests read fields from the lines.
    env: { ...process.env, LOG_LEVEL: "info", LOG_FORMAT: "json", CALIOPEN_HTTP: "127.0.0.1:0", CALIOPEN_SMTP: "127.0.0.1:0", ...env },
  });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, output: () => output, exited };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test("without NATS_URL it runs an embedded nats-server, answers the debug subject, and stops both on SIGTERM", async () => {
  const dataDir = await mkdtemp(join(tmpdir(), "caliopen-start-"));
  const port = await freePort();
  const node = startScript({ CALIOPEN_DATA_DIR: dataDir, CALIOPEN_NATS_PORT: String(port), NATS_URL: "" });
  await waitFor("node started", () => node.output().includes("node started"), 15_000);
  const serverPid = Number(await readFile(join(dataDir, "nats", "embedded-nats-server.pid"), "utf8"));
  assert.ok(alive(serverPid), "embedded nats-server running");

  // The embedded server admits only holders of the nkey it made, kept where only this user reads it.
  const anonymous = await connect({ servers: `127.0.0.1:${port}` }).then(
    (nc) => nc.close().then(() => "connected"),
    (err: Error) => err.message,
  );
  assert.match(anonymous, /Authorization Violation/i);
  const seedFile = join(dataDir, "nats", "caliopen.nk");
  assert.is((await stat(seedFile)).mode & 0o777, 0o600);
  assert.is((await stat(join(dataDir, "nats"))).mode & 0o777, 0o700, "JetStream's files are this user's only");
  assert.not.match(node.output(), /SU[A-Z2-7]{50,}/, "the seed is never logged");
  const nc = await connect(await natsConnectOptions({ url: `nats://127.0.0.1:${port}`, nkey: seedFile }));
  const reply = decodeJson((await nc.request("caliopen.debug.nodes", new Uint8Array(), { timeout: 3000 })).data);
  assert.ok(reply.ok);
  const info = reply.value as { pid: number; nats: { embedded: boolean } };
  assert.is(info.pid, node.child.pid);
  assert.is(info.nats.embedded, true);
  await nc.close();
  // The HTTP API runs on the node too: its OpenAPI document needs no token; the rest does.
  const apiUrl = /"url":"(http:[^"]+)","msg":"HTTP API listening"/.exec(node.output())?.[1];
  assert.ok(apiUrl, "the API's address is logged");
  assert.is((await fetch(`${apiUrl}/api/v2/openapi.json`)).status, 200);
  assert.is((await fetch(`${apiUrl}/api/v2/me`)).status, 401);
  // The CLI on the same machine finds the key under the node's data directory, with no setting of its own.
  const cli = await startCli(["nodes", "--json"], { CALIOPEN_DATA_DIR: dataDir, CALIOPEN_NATS_PORT: String(port) }).exited;
  assert.is(cli.code, 0, cli.stderr);
  assert.match(cli.stdout, new RegExp(`"pid":${node.child.pid}`));

  node.child.kill("SIGTERM");
  assert.is(await node.exited, 0, "exit code 0 after SIGTERM");
  assert.ok(node.output().includes("node stopped"));
  await waitFor("embedded server gone", () => !alive(serverPid), 5_000);
});

test("a clean start and stop warn of nothing, no line repeats a key, and pretty lines are flushed at exit", async () => {
  const dataDir = await mkdtemp(join(tmpdir(), "caliopen-start-"));
  const env = { CALIOPEN_DATA_DIR: dataDir, NATS_URL: "" };
  // The first start makes the data directory, keys and buckets; the second finds them.
  for (const run of [1, 2]) {
    const node = startScript({ ...env, CALIOPEN_NATS_PORT: String(await freePort()), LOG_FORMAT: "json" });
    await waitFor("node started", () => node.output().includes("node started"), 15_000);
    node.child.kill("SIGTERM");
    assert.is(await node.exited, 0);
    const lines = node.output().trimEnd().split("\n");
    assert.ok(
      lines.some((line) => line.includes('"msg":"inbound SMTP server listening"')),
      "SMTP on, with its own logger",
    );
    assert.ok(lines.at(-1)?.includes('"msg":"node stopped"'), node.output());
    for (const line of lines) {
      // JSON.parse throws on anything else on stdout or stderr (a Node warning), and hides repeated keys.
      const { level } = JSON.parse(line) as { level: number };
      assert.ok(level < 40, `run ${run}: a clean start and stop warn of nothing: ${line}`);
      assert.equal(repeatedKeys(line), [], `run ${run}: no key twice in ${line}`);
    }
  }
  const pretty = startScript({ ...env, CALIOPEN_NATS_PORT: String(await freePort()), LOG_FORMAT: "pretty", FORCE_COLOR: "0" });
  await waitFor("node started", () => pretty.output().includes("node started"), 15_000);
  pretty.child.kill("SIGTERM");
  assert.is(await pretty.exited, 0);
  assert.match(pretty.output(), /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: node started \{"node":/m);
  assert.match(pretty.output(), /INFO: node stopped.*\n$/, "the last line is written before the process exits");
  assert.not.match(pretty.output(), /^\{/m, "no JSON line");
  assert.not.match(pretty.output(), / (WARN|ERROR|FATAL): /, pretty.output());
});

test("with NATS_URL it joins that NATS instead", async () => {
  const dataDir = await mkdtemp(join(tmpdir(), "caliopen-start-"));
  const port = await freePort();
  const host = startScript({ CALIOPEN_DATA_DIR: dataDir, CALIOPEN_NATS_PORT: String(port), CALIOPEN_NODE_ID: "first" });
  await waitFor("first node", () => host.output().includes("node started"), 15_000);
  const nkey = join(dataDir, "nats", "caliopen.nk");
  // The first node made the deployment's key and the embedded server's nkey; the second is given both.
  const joiner = startScript({
    NATS_URL: `nats://127.0.0.1:${port}`,
    NATS_NKEY: nkey,
    CALIOPEN_NODE_ID: "second",
    CALIOPEN_DATA_DIR: join(dataDir, "second"),
    CALIOPEN_SECRET_KEY_FILE: join(dataDir, "secret.key"),
  });
  await waitFor("second node", () => joiner.output().includes("node started"), 15_000);
  const nc = await connect(await natsConnectOptions({ url: `nats://127.0.0.1:${port}`, nkey }));
  const nodes: string[] = [];
  for await (const msg of await nc.requestMany("caliopen.debug.nodes", new Uint8Array(), { strategy: "stall", stall: 300, maxWait: 3000 })) {
    const decoded = decodeJson(msg.data);
    if (decoded.ok) nodes.push((decoded.value as { node: string }).node);
  }
  assert.equal(nodes.sort(), ["first", "second"]);
  await nc.close();
  joiner.child.kill("SIGINT");
  assert.is(await joiner.exited, 0);
  host.child.kill("SIGTERM");
  assert.is(await host.exited, 0);
});

async function expectOneLineError(env: Record<string, string>, pattern: RegExp): Promise<void> {
  const run = startScript({ LOG_LEVEL: "silent", ...env });
  assert.is(await run.exited, 1);
  const lines = run.output().trim().split("\n");
  assert.is(lines.length, 1, `one line, got:\n${run.output()}`);
  assert.match(lines[0]!, pattern);
  assert.not.match(run.output(), /\n\s+at /, "no stack trace");
}

test("a port in use is one clear line, not a stack trace", async () => {
  const blocker = createServer();
  const port = await new Promise<number>((resolve) => blocker.listen(0, "127.0.0.1", () => resolve((blocker.address() as { port: number }).port)));
  await expectOneLineError(
    { CALIOPEN_DATA_DIR: await mkdtemp(join(tmpdir(), "caliopen-start-")), CALIOPEN_NATS_PORT: String(port), NATS_URL: "" },
    /port \d+ is already in use/,
  );
  blocker.close();
});

test("an unreachable NATS_URL is one clear line", async () => {
  await expectOneLineError(
    {
      NATS_URL: `nats://127.0.0.1:${await freePort()}`,
      CALIOPEN_SECRET_KEY: SecretBox.generateKeyText(),
      CALIOPEN_DATA_DIR: await mkdtemp(join(tmpdir(), "caliopen-start-")),
    },
    /^caliopen: cannot reach NATS at nats:\/\/127\.0\.0\.1:\d+/,
  );
});

test("a node joining NATS_URL without a secret key refuses in one line, and makes none", async () => {
  const nats = await startTestNats();
  try {
    const dataDir = await mkdtemp(join(tmpdir(), "caliopen-start-"));
    await expectOneLineError(
      { ...nats.env, CALIOPEN_DATA_DIR: dataDir, CALIOPEN_SECRET_KEY: "" },
      /^caliopen: no secret key: a node joining NATS_URL needs the deployment's key in CALIOPEN_SECRET_KEY or CALIOPEN_SECRET_KEY_FILE/,
    );
    assert.not.ok(existsSync(join(dataDir, "secret.key")), "no key file made");
  } finally {
    await nats.stop();
  }
});

test("a node whose key is not the deployment's refuses in one line naming both key ids", async () => {
  const dataDir = await mkdtemp(join(tmpdir(), "caliopen-start-"));
  const port = await freePort();
  const [deploymentKey, otherKey] = [randomBytes(32), randomBytes(32)];
  const first = startScript({
    CALIOPEN_DATA_DIR: dataDir,
    CALIOPEN_NATS_PORT: String(port),
    NATS_URL: "",
    CALIOPEN_SECRET_KEY: deploymentKey.toString("base64"),
    CALIOPEN_NODE_ID: "first",
  });
  await waitFor("first node", () => first.output().includes("node started"), 15_000);
  assert.match(first.output(), new RegExp(`"kid":"${new SecretBox(deploymentKey).kid}".*recorded the deployment's secret key check`));
  try {
    const otherKid = new SecretBox(otherKey).kid;
    await expectOneLineError(
      {
        NATS_URL: `nats://127.0.0.1:${port}`,
        NATS_NKEY: join(dataDir, "nats", "caliopen.nk"),
        CALIOPEN_DATA_DIR: join(dataDir, "second"),
        CALIOPEN_SECRET_KEY: otherKey.toString("hex"),
        CALIOPEN_NODE_ID: "second",
      },
      new RegExp(
        `^caliopen: the deployment's secret key is ${new SecretBox(deploymentKey).kid} .*the key given here is ${otherKid}: every node needs the deployment's key`,
      ),
    );
  } finally {
    first.child.kill("SIGTERM");
    assert.is(await first.exited, 0);
  }
  assert.not.ok(first.output().includes(deploymentKey.toString("base64")), "the key is never logged");
});

test("a refused, missing or unreadable NATS credential is one clear line, not a reconnect loop", async () => {
  const dataDir = await mkdtemp(join(tmpdir(), "caliopen-start-"));
  const port = await freePort();
  const host = startScript({ CALIOPEN_DATA_DIR: dataDir, CALIOPEN_NATS_PORT: String(port), NATS_URL: "", CALIOPEN_NODE_ID: "host" });
  await waitFor("node started", () => host.output().includes("node started"), 15_000);
  try {
    const url = `nats://127.0.0.1:${port}`;
    // With a secret key, so that the connection is what fails.
    const elsewhere = await mkdtemp(join(tmpdir(), "caliopen-start-"));
    await writeFile(join(elsewhere, "secret.key"), `${SecretBox.generateKeyText()}\n`, { mode: 0o600 });
    const stranger = join(elsewhere, "stranger.nk");
    await writeFile(stranger, `${new TextDecoder().decode(createUser().getSeed())}\n`, { mode: 0o600 });
    await expectOneLineError(
      { NATS_URL: url, NATS_NKEY: stranger, CALIOPEN_DATA_DIR: elsewhere },
      /^caliopen: NATS at nats:\/\/127\.0\.0\.1:\d+ refused the connection: authorization violation \(the server refused our nkey \(NATS_NKEY\)\)$/,
    );
    await expectOneLineError(
      { NATS_URL: url, CALIOPEN_DATA_DIR: elsewhere },
      /authorization violation \(the server requires credentials: set NATS_CREDS, NATS_NKEY/,
    );
    await expectOneLineError(
      { NATS_URL: `nats://someone:wrong-password@127.0.0.1:${port}`, CALIOPEN_DATA_DIR: elsewhere },
      /refused the connection: authorization violation \(the server refused our user and password/,
    );
    await expectOneLineError(
      { NATS_URL: url, NATS_NKEY: join(elsewhere, "missing.nk"), CALIOPEN_DATA_DIR: elsewhere },
      /^caliopen: NATS_NKEY \S+missing\.nk: cannot read it \(no such file\)$/,
    );
    await expectOneLineError(
      { NATS_URL: url, NATS_NKEY: stranger, NATS_USER: "node", NATS_PASSWORD: "x", CALIOPEN_DATA_DIR: elsewhere },
      /NATS_NKEY and NATS_USER\/NATS_PASSWORD are both set/,
    );
    await expectOneLineError(
      { NATS_URL: "", NATS_CREDS: stranger, CALIOPEN_DATA_DIR: elsewhere, CALIOPEN_NATS_PORT: String(await freePort()) },
      /NATS_CREDS is set but NATS_URL is not/,
    );
    // An embedded server's key that others can read is refused, as ssh refuses such keys.
    const loose = await mkdtemp(join(tmpdir(), "caliopen-start-"));
    const firstRun = startScript({ CALIOPEN_DATA_DIR: loose, CALIOPEN_NATS_PORT: String(await freePort()), NATS_URL: "" });
    await waitFor("node started", () => firstRun.output().includes("node started"), 15_000);
    firstRun.child.kill("SIGTERM");
    assert.is(await firstRun.exited, 0);
    await chmod(join(loose, "nats", "caliopen.nk"), 0o644);
    await expectOneLineError(
      { CALIOPEN_DATA_DIR: loose, CALIOPEN_NATS_PORT: String(await freePort()), NATS_URL: "" },
      /caliopen\.nk can be read by other users \(mode 644\): chmod 600 it/,
    );
  } finally {
    host.child.kill("SIGTERM");
    await host.exited;
  }
});

test("a missing nats-server binary is one clear line", async () => {
  // A PATH holding only node, wherever node and nats-server are installed.
  const nodeDir = await mkdtemp(join(tmpdir(), "caliopen-path-"));
  await symlink(process.execPath, join(nodeDir, "node"));
  await expectOneLineError(
    { PATH: nodeDir, NATS_URL: "", CALIOPEN_DATA_DIR: await mkdtemp(join(tmpdir(), "caliopen-start-")), CALIOPEN_NATS_PORT: String(await freePort()) },
    /nats-server not found on PATH/,
  );
});

test("a malformed setting is one clear line", async () => {
  await expectOneLineError({ CALIOPEN_NATS_PORT: "lots" }, /CALIOPEN_NATS_PORT must be an integer/);
  await expectOneLineError({ LOG_FORMAT: "text" }, /^caliopen: LOG_FORMAT must be one of json, pretty, got "text"$/);
  await expectOneLineError({ LOG_LEVEL: "verbose" }, /^caliopen: LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "verbose"$/);
  await expectOneLineError(
    {
      CALIOPEN_ALLOWED_DESTINATIONS: "10.0.0.0/8,*.internal:143",
      CALIOPEN_SECRET_KEY: SecretBox.generateKeyText(),
      CALIOPEN_DATA_DIR: await mkdtemp(join(tmpdir(), "caliopen-start-")),
    },
    /^caliopen: CALIOPEN_ALLOWED_DESTINATIONS: "\*\.internal:143": "\*\.internal" is not a host name \(wildcards are not supported\)$/,
  );
});

test.run();
