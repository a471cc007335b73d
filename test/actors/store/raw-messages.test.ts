import { test } from "uvu";
import * as assert from "uvu/assert";
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { startStore, type StoreFixture } from "./fixture.ts";

let f: StoreFixture;

test.before(async () => {
  f = await startStore();
});

test.after(async () => {
  await f.nats.stop();
});

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

async function* chunksOf(bytes: Uint8Array, size: number): AsyncIterable<Uint8Array> {
  for (let at = 0; at < bytes.length; at += size) {
    await Promise.resolve();
    yield bytes.subarray(at, at + size);
  }
}

async function drain(stream: ReadableStream<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const chunk of stream) parts.push(chunk);
  return Buffer.concat(parts);
}

test("a small buffer is stored with its size and hash, and reads back identical", async () => {
  const userId = randomUUID();
  const bytes = Buffer.from("From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nhello\r\n");
  const raw = await f.store.raws.put(userId, bytes);
  assert.is(raw.user_id, userId);
  assert.is(raw.size, bytes.length);
  assert.is(raw.sha256, sha256(bytes));
  assert.is(raw.delivered, false);
  assert.equal(await f.store.raws.get(raw.raw_msg_id), raw);
  assert.equal(Buffer.from((await f.store.raws.read(raw.raw_msg_id)) ?? []), bytes);
  const stream = await f.store.raws.stream(raw.raw_msg_id);
  assert.ok(stream);
  assert.equal(await drain(stream), bytes);
});

test("3 MiB given as 64 KiB chunks is stored whole: size, hash, read and stream all match", async () => {
  const bytes = randomBytes(3 * 1024 * 1024);
  const raw = await f.store.raws.put(randomUUID(), chunksOf(bytes, 64 * 1024));
  assert.is(raw.size, bytes.length);
  assert.is(raw.sha256, sha256(bytes));

  const read = await f.store.raws.read(raw.raw_msg_id);
  assert.ok(read);
  assert.is(read.length, bytes.length);
  assert.ok(Buffer.from(read).equals(bytes), "read() gives the same bytes");

  const stream = await f.store.raws.stream(raw.raw_msg_id);
  assert.ok(stream);
  const streamed = await drain(stream);
  assert.is(streamed.length, bytes.length);
  assert.ok(streamed.equals(bytes), "stream() gives the same bytes");
});

test("an empty message is stored as zero bytes", async () => {
  const raw = await f.store.raws.put(randomUUID(), new Uint8Array(0));
  assert.is(raw.size, 0);
  assert.is(raw.sha256, sha256(new Uint8Array(0)));
  assert.is((await f.store.raws.read(raw.raw_msg_id))?.length, 0);
});

test("each put is a new raw message", async () => {
  const userId = randomUUID();
  const a = await f.store.raws.put(userId, Buffer.from("same"));
  const b = await f.store.raws.put(userId, Buffer.from("same"));
  assert.is.not(a.raw_msg_id, b.raw_msg_id);
  assert.is(a.sha256, b.sha256);
});

test("markDelivered flips the flag, and only that", async () => {
  const raw = await f.store.raws.put(randomUUID(), Buffer.from("deliver me"));
  await f.store.raws.markDelivered(raw.raw_msg_id);
  assert.equal(await f.store.raws.get(raw.raw_msg_id), { ...raw, delivered: true });
  await f.store.raws.markDelivered(raw.raw_msg_id);
  assert.is((await f.store.raws.get(raw.raw_msg_id))?.delivered, true);
  assert.equal(Buffer.from((await f.store.raws.read(raw.raw_msg_id)) ?? []).toString(), "deliver me");
});

test("an unknown raw message is null everywhere", async () => {
  const id = randomUUID();
  assert.is(await f.store.raws.get(id), null);
  assert.is(await f.store.raws.read(id), null);
  assert.is(await f.store.raws.stream(id), null);
  await f.store.raws.markDelivered(id);
  assert.is(await f.store.raws.get(id), null);
});

test("putOnce stores the same bytes once: a retry gets the earlier raw message back", async () => {
  const { store } = f;
  const bytes = new TextEncoder().encode(`Subject: once ${Date.now()}\r\n\r\nbody\r\n`);
  const first = await store.raws.putOnce(null, bytes);
  assert.is(first.existing, false);
  assert.is(first.raw.user_id, null);
  const again = await store.raws.putOnce(null, bytes);
  assert.is(again.existing, true);
  assert.is(again.raw.raw_msg_id, first.raw.raw_msg_id);
  const other = await store.raws.putOnce(null, new TextEncoder().encode("Subject: another\r\n\r\nbody\r\n"));
  assert.is.not(other.raw.raw_msg_id, first.raw.raw_msg_id);
});

test.run();
