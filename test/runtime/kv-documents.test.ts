import type { NatsConnection } from "@nats-io/transport-node";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { DocumentExists, KvDocuments } from "../../runtime/kv-documents.ts";
import { startTestNats, type TestNats } from "../helpers/nats-server.ts";

interface Counter {
  name: string;
  count: number;
}

let nats: TestNats;
let nc: NatsConnection;
let docs: KvDocuments<Counter>;

test.before(async () => {
  nats = await startTestNats();
  nc = await nats.connect();
  docs = await KvDocuments.open<Counter>(nc, "test_kv_documents");
});

test.after(async () => {
  await nats.stop();
});

test("a created document reads back with its revision", async () => {
  const revision = await docs.create("plain", { name: "plain", count: 1 });
  const found = await docs.get("plain");
  assert.equal(found, { value: { name: "plain", count: 1 }, revision });
  assert.is(await docs.get("never-written"), null);
});

test("create refuses a key that already exists, and leaves the document as it was", async () => {
  await docs.create("taken", { name: "first", count: 1 });
  try {
    await docs.create("taken", { name: "second", count: 2 });
    assert.unreachable("create should have thrown");
  } catch (err) {
    assert.instance(err, DocumentExists);
    assert.match((err as Error).message, "test_kv_documents/taken");
  }
  assert.equal((await docs.get("taken"))?.value, { name: "first", count: 1 });
});

test("a deleted document is gone, and its key can be created again", async () => {
  await docs.create("short-lived", { name: "old", count: 1 });
  await docs.delete("short-lived");
  assert.is(await docs.get("short-lived"), null);
  assert.not.ok((await docs.keys()).includes("short-lived"));
  await docs.create("short-lived", { name: "new", count: 2 });
  assert.equal((await docs.get("short-lived"))?.value, { name: "new", count: 2 });
});

test("update is compare-and-swap: 20 concurrent increments all land", async () => {
  await docs.create("counter", { name: "counter", count: 0 });
  // Separate connections, so the writers really interleave on the server.
  const writers = await Promise.all(Array.from({ length: 4 }, async () => KvDocuments.open<Counter>(await nats.connect(), "test_kv_documents")));
  const results = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      (writers[i % writers.length] as KvDocuments<Counter>).update("counter", (current) => ({ ...current, count: current.count + 1 })),
    ),
  );
  assert.is((await docs.get("counter"))?.value.count, 20);
  // Each update resolves to the value it stored: every count from 1 to 20 exactly once.
  assert.equal(
    results.map((r) => r?.count).sort((a, b) => (a ?? 0) - (b ?? 0)),
    Array.from({ length: 20 }, (_, i) => i + 1),
  );
});

test("update of a missing key returns null and creates nothing", async () => {
  let called = false;
  const result = await docs.update("missing", (current) => {
    called = true;
    return { ...current, count: current.count + 1 };
  });
  assert.is(result, null);
  assert.not.ok(called);
  assert.is(await docs.get("missing"), null);
});

test("a change returning null leaves the document and its revision unchanged", async () => {
  const revision = await docs.create("unchanged", { name: "unchanged", count: 7 });
  const result = await docs.update("unchanged", () => null);
  assert.equal(result, { name: "unchanged", count: 7 });
  assert.equal(await docs.get("unchanged"), { value: { name: "unchanged", count: 7 }, revision });
});

test("a change that returns a value moves the revision forward", async () => {
  const revision = await docs.create("moving", { name: "moving", count: 0 });
  const result = await docs.update("moving", (current) => ({ ...current, count: 5 }));
  assert.equal(result, { name: "moving", count: 5 });
  const found = await docs.get("moving");
  assert.equal(found?.value, { name: "moving", count: 5 });
  assert.ok((found?.revision ?? 0) > revision);
});

test("put overwrites unconditionally", async () => {
  await docs.put("overwritten", { name: "a", count: 1 });
  await docs.put("overwritten", { name: "b", count: 2 });
  assert.equal((await docs.get("overwritten"))?.value, { name: "b", count: 2 });
});

test("keys and values select documents with a subject-style filter", async () => {
  const scoped = await KvDocuments.open<Counter>(nc, "test_kv_filtered");
  await scoped.create("alice.one", { name: "alice.one", count: 1 });
  await scoped.create("alice.two", { name: "alice.two", count: 2 });
  await scoped.create("alice.deep.three", { name: "alice.deep.three", count: 3 });
  await scoped.create("bob.one", { name: "bob.one", count: 4 });
  await scoped.create("alice.gone", { name: "alice.gone", count: 5 });
  await scoped.delete("alice.gone");

  assert.equal((await scoped.keys("alice.*")).sort(), ["alice.one", "alice.two"]);
  assert.equal((await scoped.keys("alice.>")).sort(), ["alice.deep.three", "alice.one", "alice.two"]);
  assert.equal((await scoped.keys()).sort(), ["alice.deep.three", "alice.one", "alice.two", "bob.one"]);
  assert.equal((await scoped.values("alice.*")).map((doc) => doc.name).sort(), ["alice.one", "alice.two"]);
  assert.equal(await scoped.values("bob.*"), [{ name: "bob.one", count: 4 }]);
  assert.equal(await scoped.values("carol.*"), []);
});

test.run();
