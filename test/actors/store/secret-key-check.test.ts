// The deployment's key check: recorded once by the first store to verify, opened by every one after.
// Each test is a deployment of its own (a namespace) on one nats-server.

import { randomBytes, randomUUID } from "node:crypto";
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { SecretKeyMismatch } from "../../../actors/store/secret-key-check.ts";
import { openStore, type Store } from "../../../actors/store/store.ts";
import { SecretBox } from "../../../runtime/secret-box.ts";
import { Subjects } from "../../../runtime/subjects.ts";
import { startTestNats, type TestNats } from "../../helpers/nats-server.ts";

const test = suite<{ nats: TestNats; nc: NatsConnection }>("secret key check");

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  ctx.nc = await ctx.nats.connect();
});
test.after(async (ctx) => {
  await ctx.nats.stop();
});

let deployments = 0;
/** A fresh deployment; `store(box)` opens it as a node with those keys would. */
function deployment(ctx: { nc: NatsConnection }): { namespace: string; store: (box: SecretBox | null) => Promise<Store> } {
  const namespace = `d${++deployments}`;
  return { namespace, store: (box) => openStore({ nc: ctx.nc, subjects: new Subjects(namespace), secrets: box }) };
}

const box = (...keys: Buffer[]) => new SecretBox(keys);
const key = () => randomBytes(32);

async function mismatch(what: string, run: () => Promise<unknown>): Promise<SecretKeyMismatch> {
  try {
    await run();
  } catch (err) {
    assert.instance(err, SecretKeyMismatch, `${what}: ${(err as Error).message}`);
    return err as SecretKeyMismatch;
  }
  assert.unreachable(`${what} should have been refused`);
  throw new Error("unreachable");
}

test("the first verify records the check under the sealing key; the same key passes after", async (ctx) => {
  const d = deployment(ctx);
  const k = key();
  const store = await d.store(box(k));
  assert.is(await store.keyCheck.recordedKid(), null);
  assert.equal(await store.keyCheck.verify(box(k)), { kid: box(k).kid, recordedNow: true });
  assert.equal(await store.keyCheck.verify(box(k)), { kid: box(k).kid, recordedNow: false });
  assert.is(await (await d.store(null)).keyCheck.recordedKid(), box(k).kid, "the recorded key id is readable without a key");
  // In the bucket: the key id and a sealed text, nothing of the key.
  const raw = await (await new Kvm(ctx.nc).open(`${d.namespace}_caliopen_deployment`)).get("secret_key_check");
  assert.ok(raw);
  const text = raw.string();
  assert.match(text, box(k).kid);
  assert.not.ok(text.includes(k.toString("base64")) || text.includes(k.toString("hex")));
});

test("another key is refused with both key ids named; a key ring holding the recorded key passes", async (ctx) => {
  const d = deployment(ctx);
  const [recorded, other, extra] = [key(), key(), key()];
  await (await d.store(box(recorded))).keyCheck.verify(box(recorded));
  const refused = await mismatch("another key", async () => (await d.store(box(other))).keyCheck.verify(box(other)));
  assert.is(refused.deploymentKid, box(recorded).kid);
  assert.match(refused.message, box(recorded).kid);
  assert.match(refused.message, box(other).kid);
  assert.not.match(refused.message, /\n/);
  assert.is(await (await d.store(null)).keyCheck.opensWith(box(other)), false);
  // During a rotation a node seals with a new key and still holds the old one.
  assert.equal(await (await d.store(null)).keyCheck.verify(box(other, recorded)), { kid: box(recorded).kid, recordedNow: false });
  assert.equal(await (await d.store(null)).keyCheck.verify(box(extra, other, recorded)), { kid: box(recorded).kid, recordedNow: false });
});

test("first stores racing: with one key they agree, with two keys exactly one records and the other is refused", async (ctx) => {
  const same = deployment(ctx);
  const shared = key();
  const stores = await Promise.all(Array.from({ length: 4 }, () => same.store(box(shared))));
  const results = await Promise.all(stores.map((store) => store.keyCheck.verify(box(shared))));
  assert.is(results.filter((result) => result.recordedNow).length, 1);
  assert.ok(results.every((result) => result.kid === box(shared).kid));

  const split = deployment(ctx);
  const [a, b] = [key(), key()];
  const [storeA, storeB] = await Promise.all([split.store(box(a)), split.store(box(b))]);
  const outcomes = await Promise.allSettled([storeA.keyCheck.verify(box(a)), storeB.keyCheck.verify(box(b))]);
  assert.is(outcomes.filter((outcome) => outcome.status === "fulfilled").length, 1, "one records");
  const refused = outcomes.find((outcome) => outcome.status === "rejected");
  assert.instance(refused?.reason, SecretKeyMismatch);
  assert.is((refused?.reason as SecretKeyMismatch | undefined)?.deploymentKid, await storeA.keyCheck.recordedKid());
});

test("a deployment with credentials but no check yet is recorded only by a node holding the key most of them use", async (ctx) => {
  const d = deployment(ctx);
  const [main, stray, other] = [key(), key(), key()];
  const userId = randomUUID();
  const create = async (k: Buffer, identifier: string) =>
    (await d.store(box(k))).identities.create({
      user_id: userId,
      type: "remote",
      protocol: "imap",
      identifier,
      credentials: { username: identifier, password: "pw" },
    });
  await create(main, "one@example.com");
  await create(main, "two@example.com");
  await create(stray, "three@example.com");
  for (const keys of [[stray], [other]]) {
    const refused = await mismatch(`keys without the main one`, async () => (await d.store(box(...keys))).keyCheck.verify(box(...keys)));
    assert.is(refused.deploymentKid, box(main).kid);
    assert.match(refused.message, /most stored credentials/);
  }
  assert.is(await (await d.store(null)).keyCheck.recordedKid(), null, "nothing recorded by a refused node");
  assert.equal(await (await d.store(null)).keyCheck.verify(box(other, main)), { kid: box(other).kid, recordedNow: true });
});

test("rerecord moves the check to the first key, only for keys that open it, and again is a no-op", async (ctx) => {
  const d = deployment(ctx);
  const [oldKey, newKey, stranger] = [key(), key(), key()];
  const store = await d.store(null);
  await store.keyCheck.verify(box(oldKey));
  await mismatch("keys that do not open it", () => store.keyCheck.rerecord(box(newKey, stranger)));
  assert.is(await store.keyCheck.recordedKid(), box(oldKey).kid);
  await store.keyCheck.rerecord(box(newKey, oldKey));
  assert.is(await store.keyCheck.recordedKid(), box(newKey).kid);
  await store.keyCheck.rerecord(box(newKey, oldKey));
  assert.is(await store.keyCheck.recordedKid(), box(newKey).kid);
  assert.equal(await store.keyCheck.verify(box(newKey)), { kid: box(newKey).kid, recordedNow: false });
  await mismatch("the old key alone", () => store.keyCheck.verify(box(oldKey)));
});

test.run();
