import { test } from "uvu";
import * as assert from "uvu/assert";
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Objm } from "@nats-io/obj";
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
  const stream = await f.store.raws.stream(raw.raw_msg_id);
  assert.ok(stream);
  assert.is((await drain(stream)).length, 0);
});

/** The garbage collector, exposed at run time (the test runner starts node without --expose-gc). */
function exposedGc(): () => void {
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as () => void;
}

test("stream() reads as the reader asks: a reader that stops after one chunk holds about one chunk", async () => {
  const size = 16 * 1024 * 1024;
  const bytes = randomBytes(size);
  const raw = await f.store.raws.put(randomUUID(), chunksOf(bytes, 256 * 1024));
  const gc = exposedGc();
  const live = () => {
    gc();
    const usage = process.memoryUsage();
    return usage.heapUsed + usage.arrayBuffers;
  };
  const before = live();
  const stream = await f.store.raws.stream(raw.raw_msg_id);
  assert.ok(stream);
  const reader = stream.getReader();
  const first = await reader.read();
  assert.ok(first.value && first.value.length > 0);
  // Time enough for a stream that pushes whatever the server sends to have queued all of it.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const held = live() - before;
  assert.ok(held < 2 * 1024 * 1024, `${(held / 1024 / 1024).toFixed(1)} MiB held after reading one chunk of a 16 MiB message`);
  // The rest still comes, whole and in order.
  const parts: Uint8Array[] = [first.value];
  for (let next = await reader.read(); !next.done; next = await reader.read()) parts.push(next.value);
  assert.ok(Buffer.concat(parts).equals(bytes));
});

test("stream() checks what it read: a chunk swapped in the store errors the stream, a missing one too", async () => {
  const bytes = randomBytes(600 * 1024);
  const raw = await f.store.raws.put(randomUUID(), chunksOf(bytes, 64 * 1024));
  const info = await (await new Objm(f.nc).open("caliopen_raw")).info(raw.raw_msg_id);
  assert.ok(info);
  const jsm = await jetstreamManager(f.nc);
  const subject = `$O.caliopen_raw.C.${info.nuid}`;
  const first = await jsm.direct.getMessage("OBJ_caliopen_raw", { seq: 1, next_by_subj: subject });
  assert.ok(first);
  // The first chunk replaced by as many other bytes: same size, other content.
  await jsm.streams.deleteMessage("OBJ_caliopen_raw", first.seq);
  await jetstream(f.nc).publish(subject, randomBytes(first.data.length));
  const swapped = await f.store.raws.stream(raw.raw_msg_id);
  assert.ok(swapped);
  try {
    await drain(swapped);
    assert.unreachable("a corrupt raw message streamed without error");
  } catch (err) {
    assert.match((err as Error).message, `raw message ${raw.raw_msg_id} is corrupt`);
  }

  const short = await f.store.raws.put(randomUUID(), chunksOf(randomBytes(300 * 1024), 64 * 1024));
  const shortInfo = await (await new Objm(f.nc).open("caliopen_raw")).info(short.raw_msg_id);
  assert.ok(shortInfo);
  const last = await jsm.direct.getMessage("OBJ_caliopen_raw", { last_by_subj: `$O.caliopen_raw.C.${shortInfo.nuid}` });
  assert.ok(last);
  await jsm.streams.deleteMessage("OBJ_caliopen_raw", last.seq);
  const truncated = await f.store.raws.stream(short.raw_msg_id);
  assert.ok(truncated);
  try {
    await drain(truncated);
    assert.unreachable("a truncated raw message streamed without error");
  } catch (err) {
    assert.match((err as Error).message, `raw message ${short.raw_msg_id} is truncated`);
  }
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

test("putOnce with a trace and a scope: the trace is stored first but not compared, the scope is", async () => {
  const { store } = f;
  const bytes = new TextEncoder().encode(`Subject: traced ${Date.now()}\r\n\r\nbody\r\n`);
  const trace = (at: string) => new TextEncoder().encode(`Received: by mx; ${at}\r\n`);
  const first = await store.raws.putOnce(null, bytes, { scope: "bob@example.org", trace: trace("10:00") });
  assert.is(first.existing, false);
  assert.is(Buffer.from((await store.raws.read(first.raw.raw_msg_id)) ?? []).toString(), `Received: by mx; 10:00\r\n${Buffer.from(bytes).toString()}`);
  assert.is(first.raw.size, trace("10:00").length + bytes.length);
  // A retry: another time in its trace, the same raw (with the first trace).
  const retry = await store.raws.putOnce(null, bytes, { scope: "bob@example.org", trace: trace("10:05") });
  assert.is(retry.existing, true);
  assert.is(retry.raw.raw_msg_id, first.raw.raw_msg_id);
  // The same bytes for other recipients: another raw.
  const other = await store.raws.putOnce(null, bytes, { scope: "carol@example.org", trace: trace("10:06") });
  assert.is(other.existing, false);
  assert.is.not(other.raw.raw_msg_id, first.raw.raw_msg_id);
  // Without a scope, the key is the bytes' own, as before.
  assert.is.not((await store.raws.putOnce(null, bytes)).raw.raw_msg_id, first.raw.raw_msg_id);
});

test.run();
