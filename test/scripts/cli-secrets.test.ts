// `caliopen secrets`: the deployment's key check and its credentials per key id, and rotation to a new
// key, run as an operator runs it (a CLI process with a node's key settings) against a real nats-server.

import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { generateKey } from "openpgp";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { parsePrivateKey } from "../../actors/keys/parse-private-key.ts";
import type { StoredIdentity } from "../../actors/store/identities.ts";
import type { Identity } from "../../actors/store/model.ts";
import type { PrivateKeyInfo } from "../../actors/store/private-keys.ts";
import { openStore, type Store } from "../../actors/store/store.ts";
import { SecretBox } from "../../runtime/secret-box.ts";
import { StartupError } from "../../runtime/startup-error.ts";
import { Subjects } from "../../runtime/subjects.ts";
import { caliopenServices } from "../../supervisors/caliopen-services.ts";
import { type CliResult, startCli } from "../helpers/cli-process.ts";
import { legacySeal } from "../helpers/legacy-seal.ts";
import { startTestNats, type TestNats } from "../helpers/nats-server.ts";
import { startTestNode, testCaliopenConfig } from "../helpers/test-node.ts";

interface Context {
  nats: TestNats;
  nc: NatsConnection;
  kv: KV;
  dataDir: string;
  userId: string;
  /** The identities with credentials, all sealed under the old key (one in the format before binding). */
  sealed: Identity[];
  privateKey: PrivateKeyInfo;
}

const test = suite<Context>("caliopen secrets");
const PASSWORD = "rotate-me-but-never-print-me";
const [oldKey, newKey, strangerKey] = [randomBytes(32), randomBytes(32), randomBytes(32)];
const kid = (key: Buffer) => new SecretBox(key).kid;
const text = (key: Buffer) => key.toString("base64");
const store = (ctx: Context, box: SecretBox | null): Promise<Store> => openStore({ nc: ctx.nc, subjects: new Subjects(""), secrets: box });

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  ctx.nc = await ctx.nats.connect();
  // An empty data dir: no secret.key there unless a test writes one.
  ctx.dataDir = await mkdtemp(join(tmpdir(), "caliopen-cli-secrets-"));
  const before = await store(ctx, new SecretBox(oldKey));
  await before.keyCheck.verify(new SecretBox(oldKey));
  ctx.userId = randomUUID();
  const remote = (identifier: string) =>
    before.identities.create({ user_id: ctx.userId, type: "remote", protocol: "imap", identifier, credentials: { username: identifier, password: PASSWORD } });
  ctx.sealed = [await remote("a@example.com"), await remote("b@example.com"), await remote("legacy@example.com")];
  await before.identities.create({ user_id: ctx.userId, type: "local", protocol: "email", identifier: "no-credentials@example.com" });
  // A private key, sealed like credentials: rotated with them.
  const { privateKey } = await generateKey({ userIDs: [{ email: "a@example.com" }], format: "armored" });
  ctx.privateKey = await before.privateKeys.add(ctx.userId, await parsePrivateKey(privateKey, undefined));
  ctx.kv = await new Kvm(ctx.nc).open("caliopen_identities");
  const legacy = ctx.sealed[2] as Identity;
  const document = (await ctx.kv.get(`${ctx.userId}.${legacy.identity_id}`))?.json<StoredIdentity>();
  const sealed = legacySeal(oldKey, JSON.stringify({ username: legacy.identifier, password: PASSWORD }));
  await ctx.kv.put(`${ctx.userId}.${legacy.identity_id}`, JSON.stringify({ ...document, sealed_credentials: sealed }));
});
test.after(async (ctx) => {
  await ctx.nats.stop();
});

async function secrets(ctx: Context, env: Record<string, string>, ...args: string[]): Promise<CliResult> {
  const result = await startCli(["secrets", ...args], { ...ctx.nats.env, CALIOPEN_DATA_DIR: ctx.dataDir, ...env }).exited;
  for (const key of [oldKey, newKey, strangerKey]) {
    for (const form of [key.toString("base64"), key.toString("hex")]) assert.not.ok(`${result.stdout}${result.stderr}`.includes(form), "a key was printed");
  }
  assert.not.ok(`${result.stdout}${result.stderr}`.includes(PASSWORD), "a password was printed");
  return result;
}

async function sealedKids(ctx: Context): Promise<{ kid: string; v: number | undefined }[]> {
  return Promise.all(
    ctx.sealed.map(async (identity) => {
      const sealed = (await ctx.kv.get(`${ctx.userId}.${identity.identity_id}`))?.json<StoredIdentity>().sealed_credentials;
      assert.ok(sealed, `${identity.identifier} has sealed credentials`);
      return { kid: sealed.kid, v: sealed.v };
    }),
  );
}

test("secrets status shows the recorded key id and the credentials per key id and format, with or without a key", async (ctx) => {
  const shown = await secrets(ctx, { CALIOPEN_SECRET_KEY: text(oldKey) }, "status");
  assert.is(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, `key check: recorded with key ${kid(oldKey)}`);
  assert.match(shown.stdout, `keys here: ${kid(oldKey)} (seals); they open the key check`);
  assert.match(shown.stdout, new RegExp(`^${kid(oldKey)}\\s+2\\s+2\\s+yes$`, "m"));
  assert.match(shown.stdout, new RegExp(`^${kid(oldKey)}\\s+1 \\(not bound to its identity\\)\\s+1\\s+yes$`, "m"));
  assert.match(shown.stdout, `private keys: 1 sealed with key ${kid(oldKey)}`);

  const keyless = await secrets(ctx, {}, "--json", "status");
  assert.is(keyless.code, 0, keyless.stderr);
  const body = JSON.parse(keyless.stdout) as {
    key_check: string;
    keys: string[];
    opens_key_check: boolean | null;
    credentials: { kid: string; format: number; count: number }[];
  };
  assert.is(body.key_check, kid(oldKey));
  assert.equal(body.keys, []);
  assert.is(body.opens_key_check, null);
  assert.equal(body.credentials, [
    { kid: kid(oldKey), format: 2, count: 2 },
    { kid: kid(oldKey), format: 1, count: 1 },
  ]);

  const stranger = await secrets(ctx, { CALIOPEN_SECRET_KEY: text(strangerKey) }, "status");
  assert.is(stranger.code, 1, "keys that do not open the check: exit 1");
  assert.match(stranger.stdout, "they do NOT open the key check");
});

test("secrets rotate refuses keys that do not open the recorded check, and changes nothing", async (ctx) => {
  const refused = await secrets(ctx, { CALIOPEN_SECRET_KEY: `${text(newKey)},${text(strangerKey)}` }, "rotate");
  assert.is(refused.code, 1);
  assert.match(refused.stderr, /^caliopen: the deployment's secret key is /);
  for (const id of [kid(oldKey), kid(newKey), kid(strangerKey)]) assert.match(refused.stderr, id);
  assert.match(refused.stderr, "nothing was re-sealed");
  assert.equal(await sealedKids(ctx), [
    { kid: kid(oldKey), v: 2 },
    { kid: kid(oldKey), v: 2 },
    { kid: kid(oldKey), v: undefined },
  ]);
  assert.is(await (await store(ctx, null)).keyCheck.recordedKid(), kid(oldKey));

  const keyless = await secrets(ctx, {}, "rotate");
  assert.is(keyless.code, 1);
  assert.match(keyless.stderr, /^caliopen: no secret key here: run it with a node's CALIOPEN_SECRET_KEY/);
});

test("secrets rotate re-seals every credential under the new first key (legacy ones bound too), then re-records the check", async (ctx) => {
  const rotated = await secrets(ctx, { CALIOPEN_SECRET_KEY: `${text(newKey)},${text(oldKey)}` }, "rotate");
  assert.is(rotated.code, 0, rotated.stderr);
  assert.match(rotated.stdout, `key check: was recorded with key ${kid(oldKey)}, now with key ${kid(newKey)}`);
  assert.match(rotated.stdout, `credentials: 3 re-sealed under key ${kid(newKey)}, 0 already current, 0 could not be opened`);
  assert.match(rotated.stdout, "private keys: 1 re-sealed, 0 already current, 0 could not be opened");
  assert.equal(await sealedKids(ctx), [
    { kid: kid(newKey), v: 2 },
    { kid: kid(newKey), v: 2 },
    { kid: kid(newKey), v: 2 },
  ]);
  const after = await store(ctx, new SecretBox(newKey));
  for (const identity of ctx.sealed)
    assert.equal(await after.identities.credentials(ctx.userId, identity.identity_id), { username: identity.identifier, password: PASSWORD });
  assert.is(await after.keyCheck.recordedKid(), kid(newKey));
  assert.match(
    (await after.privateKeys.unlockedKey(ctx.userId, ctx.privateKey.fingerprint)) ?? "",
    /PRIVATE KEY BLOCK/,
    "the private key opens with the new key alone",
  );
});

test("secrets rotate again is a no-op (keys from a key file, one per line)", async (ctx) => {
  const file = join(ctx.dataDir, "rotation.keys");
  await writeFile(file, `${text(newKey)}\n${oldKey.toString("hex")}\n`, { mode: 0o600 });
  const again = await secrets(ctx, { CALIOPEN_SECRET_KEY_FILE: file }, "--json", "rotate");
  assert.is(again.code, 0, again.stderr);
  assert.equal(JSON.parse(again.stdout), {
    key_check: { before: kid(newKey), after: kid(newKey) },
    resealed: 0,
    current: 3,
    unopenable: {},
    private_keys: { resealed: 0, current: 1, unopenable: {} },
  });
});

test("after the rotation a node with only the new key starts, and one with only the old key refuses", async (ctx) => {
  const node = await startTestNode(ctx.nats.endpoint, caliopenServices(testCaliopenConfig({ api: null, secrets: new SecretBox(newKey) })), {
    nodeId: "new-key-node",
  });
  await node.shutdown("test over");
  try {
    await startTestNode(ctx.nats.endpoint, caliopenServices(testCaliopenConfig({ api: null, secrets: new SecretBox(oldKey) })), { nodeId: "old-key-node" });
    assert.unreachable("a node with only the old key should not start");
  } catch (err) {
    assert.instance(err, StartupError, (err as Error).message);
    assert.match((err as Error).message, `the deployment's secret key is ${kid(newKey)}`);
    assert.match((err as Error).message, kid(oldKey));
  }
});

test("credentials no key here opens are reported, and rotate exits 1 until they are dealt with", async (ctx) => {
  const lost = await (await store(ctx, new SecretBox(strangerKey))).identities.create({
    user_id: ctx.userId,
    type: "remote",
    protocol: "imap",
    identifier: "lost@example.com",
    credentials: { username: "lost", password: PASSWORD },
  });
  const result = await secrets(ctx, { CALIOPEN_SECRET_KEY: text(newKey) }, "rotate");
  assert.is(result.code, 1);
  assert.match(result.stdout, "0 re-sealed under key");
  assert.match(result.stdout, "3 already current, 1 could not be opened");
  assert.match(result.stderr, `1 credential sealed with key ${kid(strangerKey)} could not be opened`);
  const kept = (await ctx.kv.get(`${ctx.userId}.${lost.identity_id}`))?.json<StoredIdentity>().sealed_credentials;
  assert.is(kept?.kid, kid(strangerKey), "left as it was");
});

test("bad command lines are usage errors (exit 2)", async (ctx) => {
  for (const args of [[], ["spin"], ["status", "extra"], ["rotate", "--admin"]]) {
    const result = await secrets(ctx, {}, ...args);
    assert.is(result.code, 2, `secrets ${args.join(" ")}: ${result.stderr}`);
  }
});

test.run();
