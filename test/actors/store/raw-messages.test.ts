import { createHash, randomBytes, randomUUID } from "node:crypto";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { Objm } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { type RawMessage, SCHEMA_VERSION } from "../../../actors/store/model.ts";
import { openStore, type Store } from "../../../actors/store/store.ts";
import { KvDocuments } from "../../../runtime/kv-documents.ts";
import { Subjects } from "../../../runtime/subjects.ts";
import { startTestNats } from "../../helpers/nats-server.ts";
import { type StoreFixture, startStore } from "./fixture.ts";

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
  assert.ok(bytes.length > f.store.raws.inlineLimit, "an object, in chunks");
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

  const short = await f.store.raws.put(randomUUID(), chunksOf(randomBytes(700 * 1024), 64 * 1024));
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

test("an id that is a subject wildcard reads no raw's bytes (a hostile order names any id)", async () => {
  await f.store.raws.put(randomUUID(), Buffer.from("Subject: secret\r\n\r\nsomeone's mail\r\n"));
  for (const id of [">", "*", "a.>", "*.*"]) {
    assert.is(await f.store.raws.read(id), null, `read(${JSON.stringify(id)})`);
    assert.is(await f.store.raws.stream(id), null, `stream(${JSON.stringify(id)})`);
  }
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

// ---------------------------------------------------------------------------------------------------
// Where the bytes are: one message for a raw that fits, an object for a larger one, and objects written
// before inline raws existed.

const INLINE_STREAM = "KV_caliopen_raw_inline";
const inlineSubject = (rawId: string) => `$KV.caliopen_raw_inline.${rawId}`;

/** How many messages the inline bucket holds for this raw, and whether the object store has it. */
async function whereStored(rawId: string): Promise<{ inlineMessages: number; object: boolean }> {
  const jsm = await jetstreamManager(f.nc);
  const info = await jsm.streams.info(INLINE_STREAM, { subjects_filter: inlineSubject(rawId) });
  const objects = await new Objm(f.nc).open("caliopen_raw");
  const object = await objects.info(rawId);
  return { inlineMessages: info.state.subjects?.[inlineSubject(rawId)] ?? 0, object: object !== null && !object.deleted };
}

/** A store of its own on a connection of its own, which has read or written nothing yet. */
async function freshStore(): Promise<{ store: Store; nc: NatsConnection }> {
  const nc = await f.nats.connect();
  return { store: await openStore({ nc, subjects: new Subjects(""), secrets: f.secrets }), nc };
}

async function readBoth(store: Store, rawId: string): Promise<{ read: Buffer; streamed: Buffer }> {
  const stream = await store.raws.stream(rawId);
  assert.ok(stream, `raw ${rawId} streams`);
  return { read: Buffer.from((await store.raws.read(rawId)) ?? []), streamed: await drain(stream) };
}

test("a small raw is one message, not an object, and reads back byte-identical here and on another store", async () => {
  const bytes = randomBytes(10 * 1024);
  const raw = await f.store.raws.put(randomUUID(), bytes);
  assert.equal(await whereStored(raw.raw_msg_id), { inlineMessages: 1, object: false });
  for (const store of [f.store, (await freshStore()).store]) {
    const { read, streamed } = await readBoth(store, raw.raw_msg_id);
    assert.ok(read.equals(bytes), "read() gives the same bytes");
    assert.ok(streamed.equals(bytes), "stream() gives the same bytes");
    assert.equal(await store.raws.get(raw.raw_msg_id), raw);
  }
});

test("the size boundary: exactly the inline limit is one message, one byte more an object, whether given whole or in chunks", async () => {
  const limit = f.store.raws.inlineLimit;
  assert.is(limit, 512 * 1024, "a 1 MiB max_payload allows the full 512 KiB");
  const other = (await freshStore()).store;
  for (const [size, inline] of [
    [limit, true],
    [limit + 1, false],
  ] as const) {
    const bytes = randomBytes(size);
    for (const content of [bytes, chunksOf(bytes, 100 * 1024)]) {
      const raw = await f.store.raws.put(null, content);
      assert.is(raw.size, size);
      assert.is(raw.sha256, sha256(bytes));
      assert.equal(await whereStored(raw.raw_msg_id), { inlineMessages: inline ? 1 : 0, object: !inline }, `${size} bytes`);
      for (const store of [f.store, other]) {
        const { read, streamed } = await readBoth(store, raw.raw_msg_id);
        assert.ok(read.equals(bytes) && streamed.equals(bytes), `${size} bytes read back identical`);
      }
    }
  }
});

test("a store keeps to the inline bucket's own size limit, as a node that made it on a lower max_payload left it", async () => {
  const nats = await startTestNats();
  try {
    const nc = await nats.connect();
    await new Kvm(nc).create("caliopen_raw_inline", { history: 1, maxValueSize: 64 * 1024 + 4096 });
    const store = await openStore({ nc, subjects: new Subjects(""), secrets: f.secrets });
    assert.is(store.raws.inlineLimit, 64 * 1024);
    const bytes = randomBytes(100 * 1024);
    const raw = await store.raws.put(null, bytes);
    assert.is(raw.size, bytes.length);
    assert.ok(Buffer.from((await store.raws.read(raw.raw_msg_id)) ?? []).equals(bytes), "stored as an object, read back");
  } finally {
    await nats.stop();
  }
});

test("an inline raw whose bytes were changed in the store is refused, not given", async () => {
  const raw = await f.store.raws.put(null, Buffer.from("Subject: genuine\r\n\r\nbody\r\n"));
  // Another message under the raw's subject, with the genuine digest header but other bytes.
  const jsm = await jetstreamManager(f.nc);
  const stored = await jsm.direct.getMessage(INLINE_STREAM, { last_by_subj: inlineSubject(raw.raw_msg_id) });
  assert.ok(stored);
  await jetstream(f.nc).publish(inlineSubject(raw.raw_msg_id), Buffer.from("Subject: forged\r\n\r\nbody\r\n"), { headers: stored.header });
  // Read by a store that did not write it (the writer hands its own import the bytes it wrote).
  const reader = (await freshStore()).store;
  for (const attempt of [() => reader.raws.read(raw.raw_msg_id), () => reader.raws.stream(raw.raw_msg_id)]) {
    try {
      await attempt();
      assert.unreachable("a corrupt inline raw was given");
    } catch (err) {
      assert.match((err as Error).message, `raw message ${raw.raw_msg_id} is corrupt`);
    }
  }
});

/** A deterministic stream of `size` bytes made as it is read (never held whole), and its sha256 once read. */
function generated(size: number, chunk: number): { chunks: AsyncIterable<Uint8Array>; digest: () => string; sampled: (sample: () => void) => void } {
  const hash = createHash("sha256");
  let sample: () => void = () => {};
  return {
    chunks: (async function* () {
      for (let at = 0, n = 0; at < size; at += chunk, n++) {
        const part = Buffer.alloc(Math.min(chunk, size - at), n % 251);
        part.writeUInt32BE(n, 0);
        hash.update(part);
        if (n % 16 === 0) sample();
        await Promise.resolve();
        yield part;
      }
    })(),
    digest: () => hash.digest("hex"),
    sampled: (next) => {
      sample = next;
    },
  };
}

test("a 20 MiB raw is streamed in and out: memory stays bounded both ways", async () => {
  const size = 20 * 1024 * 1024;
  // In: the one buffer gathered before a raw is known to be too large for one message (512 KiB), the
  // object store's chunk, and room for what the process's buffer pools swing by between two samples.
  const BOUND = 6 * 1024 * 1024;
  const gc = exposedGc();
  const live = () => {
    gc();
    const usage = process.memoryUsage();
    return usage.heapUsed + usage.arrayBuffers;
  };
  const source = generated(size, 64 * 1024);
  const before = live();
  let peak = 0;
  source.sampled(() => {
    peak = Math.max(peak, live() - before);
  });
  const raw = await f.store.raws.put(randomUUID(), source.chunks);
  assert.is(raw.size, size);
  assert.is(raw.sha256, source.digest());
  assert.equal(await whereStored(raw.raw_msg_id), { inlineMessages: 0, object: true });
  assert.ok(peak < BOUND, `${(peak / 1024 / 1024).toFixed(1)} MiB held at most while storing 20 MiB`);

  // Out: a reader that has taken one chunk holds about that chunk, whatever the raw's size; the rest comes whole.
  const stream = await (await freshStore()).store.raws.stream(raw.raw_msg_id);
  assert.ok(stream);
  const reader = stream.getReader();
  const outBefore = live();
  const first = await reader.read();
  assert.ok(first.value && first.value.length > 0);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const held = live() - outBefore;
  assert.ok(held < 2 * 1024 * 1024, `${(held / 1024 / 1024).toFixed(1)} MiB held after reading one chunk of 20 MiB`);
  const out = createHash("sha256").update(first.value);
  let read = first.value.length;
  for (let next = await reader.read(); !next.done; next = await reader.read()) {
    out.update(next.value);
    read += next.value.length;
  }
  assert.is(read, size);
  assert.is(out.digest("hex"), raw.sha256);
});

/** A raw as stored before inline raws: an object and its document, and (with `claim`) putOnce's content claim. */
async function putTheOldWay(bytes: Uint8Array, claim?: { scope?: string }): Promise<RawMessage> {
  const id = randomUUID();
  const objects = await new Objm(f.nc).open("caliopen_raw");
  await objects.putBlob({ name: id }, bytes);
  const raw: RawMessage = {
    schema: SCHEMA_VERSION,
    raw_msg_id: id,
    user_id: null,
    size: bytes.length,
    sha256: sha256(bytes),
    delivered: false,
    date_insert: new Date().toISOString(),
  };
  await (await KvDocuments.open<RawMessage>(f.nc, "caliopen_raw_messages")).create(id, raw);
  if (claim !== undefined) {
    const key = createHash("sha256");
    if (claim.scope !== undefined) key.update(`${claim.scope}\n`, "utf8");
    await (await KvDocuments.open<{ target: string }>(f.nc, "caliopen_lookups")).create(`rawsha.${key.update(bytes).digest("hex")}`, { target: id });
  }
  return raw;
}

test("a raw stored the old way (an object, however small) is still read, streamed and marked delivered", async () => {
  const bytes = Buffer.from(`Subject: stored before ${Date.now()}\r\n\r\nbody\r\n`);
  const raw = await putTheOldWay(bytes);
  assert.equal(await whereStored(raw.raw_msg_id), { inlineMessages: 0, object: true });
  for (const store of [f.store, (await freshStore()).store]) {
    assert.equal(await store.raws.get(raw.raw_msg_id), raw);
    const { read, streamed } = await readBoth(store, raw.raw_msg_id);
    assert.ok(read.equals(bytes) && streamed.equals(bytes));
  }
  await f.store.raws.markDelivered(raw.raw_msg_id);
  assert.equal(await f.store.raws.get(raw.raw_msg_id), { ...raw, delivered: true });
});

test("putOnce de-duplicates across both kinds: an old object, an inline raw, a large object; the retry's own copy is removed", async () => {
  const jsm = await jetstreamManager(f.nc);
  const counts = async () => ({
    inline: (await jsm.streams.info(INLINE_STREAM)).state.messages,
    objects: (await (await new Objm(f.nc).open("caliopen_raw")).list()).filter((info) => !info.deleted).length,
  });
  const scope = `dedupe ${randomUUID()}`;
  const old = Buffer.from(`Subject: old ${Date.now()}\r\n\r\nbody\r\n`);
  const oldRaw = await putTheOldWay(old, { scope });
  const small = Buffer.from(`Subject: small ${Date.now()}\r\n\r\nbody\r\n`);
  const large = randomBytes(f.store.raws.inlineLimit + 1000);
  const first = {
    small: await f.store.raws.putOnce(null, small, { scope, trace: Buffer.from("Received: 1\r\n") }),
    large: await f.store.raws.putOnce(null, large, { scope }),
  };
  assert.is(first.small.existing, false);
  assert.is(first.large.existing, false);
  assert.equal(await whereStored(first.large.raw.raw_msg_id), { inlineMessages: 0, object: true });

  const before = await counts();
  for (const store of [f.store, (await freshStore()).store]) {
    const again = await store.raws.putOnce(null, old, { scope, trace: Buffer.from("Received: 2\r\n") });
    assert.equal(again, { raw: oldRaw, existing: true }, "the old object's raw");
    const smallAgain = await store.raws.putOnce(null, small, { scope, trace: Buffer.from("Received: 2\r\n") });
    assert.equal(smallAgain, { raw: first.small.raw, existing: true }, "the inline raw");
    assert.equal(
      Buffer.from((await store.raws.read(smallAgain.raw.raw_msg_id)) ?? []).toString(),
      `Received: 1\r\n${small.toString()}`,
      "with its first trace",
    );
    const largeAgain = await store.raws.putOnce(null, large, { scope });
    assert.equal(largeAgain, { raw: first.large.raw, existing: true }, "the large object's raw");
  }
  assert.equal(await counts(), before, "the retries' own copies are gone");
});

test("putOnce racing itself on 4 stores: one raw wins, every caller gets it, the losers' copies are removed", async () => {
  const jsm = await jetstreamManager(f.nc);
  const inlineBefore = (await jsm.streams.info(INLINE_STREAM)).state.messages;
  const bytes = Buffer.from(`Subject: race ${randomUUID()}\r\n\r\nbody\r\n`);
  const stores = [f.store, ...(await Promise.all([1, 2, 3].map(async () => (await freshStore()).store)))];
  const results = await Promise.all(stores.map((store) => store.raws.putOnce(null, bytes, { scope: "race" })));
  const ids = new Set(results.map((result) => result.raw.raw_msg_id));
  assert.is(ids.size, 1, "one raw for all");
  assert.is(results.filter((result) => !result.existing).length, 1, "one caller stored it");
  assert.is((await jsm.streams.info(INLINE_STREAM)).state.messages, inlineBefore + 1);
});

test("markDelivered from a revision another store changed since: read again and still marked, once", async () => {
  const raw = await f.store.raws.put(null, Buffer.from("deliver me twice"));
  const other = (await freshStore()).store;
  await other.raws.markDelivered(raw.raw_msg_id);
  const docs = await KvDocuments.open<RawMessage>(f.nc, "caliopen_raw_messages");
  const afterOther = await docs.get(raw.raw_msg_id);
  assert.is(afterOther?.value.delivered, true);
  // This store still knows the revision its put wrote: its compare-and-swap fails, it reads, finds it done.
  await f.store.raws.markDelivered(raw.raw_msg_id);
  assert.is((await docs.get(raw.raw_msg_id))?.revision, afterOther?.revision, "no second write");
  // And concurrently from fresh raws on several stores: delivered, the document otherwise unchanged.
  const fresh = await f.store.raws.put(null, Buffer.from("deliver me from everywhere"));
  const stores = [f.store, other, (await freshStore()).store];
  await Promise.all(stores.map((store) => store.raws.markDelivered(fresh.raw_msg_id)));
  assert.equal(await other.raws.get(fresh.raw_msg_id), { ...fresh, delivered: true });
});

// ---------------------------------------------------------------------------------------------------
// What a raw costs on the wire, counted by a connection that sees every message.

interface Wire {
  requests: string[];
  replies: number;
}

async function onTheWire(watcher: NatsConnection, store: NatsConnection, op: () => Promise<unknown>): Promise<Wire> {
  const seen: string[] = [];
  const sub = watcher.subscribe(">", {
    callback: (_err, msg) => {
      seen.push(msg.subject);
    },
  });
  await watcher.flush();
  await op();
  await store.flush();
  // A round trip through the server after the operation: everything it caused has reached the watcher.
  await watcher.flush();
  sub.unsubscribe();
  const requests = seen.filter((subject) => !subject.startsWith("_INBOX.") && !subject.startsWith("$JS.EVENT."));
  return {
    requests: requests.map((subject) => subject.replace(/[0-9a-f]{8}-[0-9a-f-]{27}/g, "<id>").replace(/rawsha\.[0-9a-f]{64}/, "rawsha.<hash>")).sort(),
    replies: seen.filter((subject) => subject.startsWith("_INBOX.")).length,
  };
}

test("on the wire: a small raw's put, get, stream and markDelivered are 5 requests; marking it again, none; the writer's first stream, none", async () => {
  const { store, nc } = await freshStore();
  const watcher = await f.nats.connect();
  // The store's first JetStream read makes its JetStream manager (one INFO request, once).
  const warmUp = (await store.raws.put(null, Buffer.from("warm up"))).raw_msg_id;
  await store.raws.stream(warmUp);
  await store.raws.stream(warmUp);
  const bytes = randomBytes(10 * 1024);
  let raw: RawMessage | null = null;
  const put = await onTheWire(watcher, nc, async () => {
    raw = await store.raws.put(null, bytes);
  });
  assert.equal(
    put,
    { requests: ["$KV.caliopen_raw_inline.<id>", "$KV.caliopen_raw_messages.<id>"], replies: 2 },
    "put: the bytes and the document, one message each",
  );
  const id = (raw as RawMessage | null)?.raw_msg_id ?? "";
  const got = await onTheWire(watcher, nc, () => store.raws.get(id));
  assert.equal(got, { requests: ["$JS.API.DIRECT.GET.KV_caliopen_raw_messages.$KV.caliopen_raw_messages.<id>"], replies: 1 });
  let streamed: Buffer = Buffer.alloc(0);
  const fromMemory = await onTheWire(watcher, nc, async () => {
    const stream = await store.raws.stream(id);
    assert.ok(stream);
    streamed = await drain(stream);
  });
  assert.ok(streamed.equals(bytes));
  assert.equal(fromMemory, { requests: [], replies: 0 }, "the writer's first stream: the bytes it wrote, no read");
  const read = await onTheWire(watcher, nc, async () => {
    const stream = await store.raws.stream(id);
    assert.ok(stream);
    streamed = await drain(stream);
  });
  assert.ok(streamed.equals(bytes));
  assert.equal(read, { requests: ["$JS.API.DIRECT.GET.KV_caliopen_raw_inline.$KV.caliopen_raw_inline.<id>"], replies: 1 }, "stream: one direct get");
  const marked = await onTheWire(watcher, nc, () => store.raws.markDelivered(id));
  assert.equal(marked, { requests: ["$KV.caliopen_raw_messages.<id>"], replies: 1 }, "markDelivered: one compare-and-swap, no read");
  assert.equal(await onTheWire(watcher, nc, () => store.raws.markDelivered(id)), { requests: [], replies: 0 }, "marked again: nothing");
  assert.is((await f.store.raws.get(id))?.delivered, true);
});

test("on the wire: putOnce of new bytes is 3 requests (the raw, its document, its claim), no read", async () => {
  const { store, nc } = await freshStore();
  const watcher = await f.nats.connect();
  const wire = await onTheWire(watcher, nc, () => store.raws.putOnce(null, randomBytes(4096), { scope: "wire", trace: Buffer.from("Received: now\r\n") }));
  assert.equal(wire, { requests: ["$KV.caliopen_lookups.rawsha.<hash>", "$KV.caliopen_raw_inline.<id>", "$KV.caliopen_raw_messages.<id>"], replies: 3 });
});

test.run();
