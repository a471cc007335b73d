// Raw messages: the bytes as received (RFC 5322 mail, a DM event's JSON). A raw that fits one NATS
// message comfortably is one message (inline-raws.ts): one publish to write, one direct get to read.
// A larger one goes to the object store, which chunks it, so it is streamed in and out instead of held
// whole. A small KV document keeps what the services ask about it (owner, size, hash, delivered). Raws
// stored before inline ones existed are all objects: reading looks in both places.

import { createHash, randomUUID } from "node:crypto";
import { Readable } from "node:stream";
import type { ReadableStream as NodeReadableStream } from "node:stream/web";
import type { JetStreamManager } from "@nats-io/jetstream";
import type { ObjectInfo, ObjectStore } from "@nats-io/obj";
import type { KvDocuments } from "../../runtime/kv-documents.ts";
import type { InlineRaws } from "./inline-raws.ts";
import { KnownRaws, type ObjectPlace } from "./known-raws.ts";
import type { Lookups } from "./lookups.ts";
import { type RawMessage, SCHEMA_VERSION } from "./model.ts";

/** Where the object store keeps the chunks, for `stream()` to read them one by one. */
export interface RawChunkSource {
  /** The object store's bucket name (its stream is `OBJ_<bucket>`). */
  bucket: string;
  jsm: () => Promise<JetStreamManager>;
}

const CHUNK_RETRIES = 20;

export class RawMessageStore {
  private readonly known = new KnownRaws();

  constructor(
    private readonly objects: ObjectStore,
    private readonly inline: InlineRaws,
    private readonly docs: KvDocuments<RawMessage>,
    private readonly lookups: Lookups,
    private readonly chunks: RawChunkSource,
  ) {}

  /** The largest raw stored as one message (bytes); a larger one is an object. */
  get inlineLimit(): number {
    return this.inline.limit;
  }

  /**
   * Stores the bytes (a buffer, or chunks as they arrive) and returns the new raw message. Chunks are
   * gathered until they are known to fit one message (then it is written with its document, both at
   * once: nobody knows the new id before both are stored), or not (then they go on to the object store
   * as they come, and the document follows).
   */
  async put(userId: string | null, content: Uint8Array | AsyncIterable<Uint8Array>): Promise<RawMessage> {
    const id = randomUUID();
    const hash = createHash("sha256");
    const document = (size: number): RawMessage => ({
      schema: SCHEMA_VERSION,
      raw_msg_id: id,
      user_id: userId,
      size,
      sha256: hash.digest("hex"),
      delivered: false,
      date_insert: new Date().toISOString(),
    });
    const source = content instanceof Uint8Array ? single(content) : content;
    const iterator = source[Symbol.asyncIterator]();
    const head: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      if (size > this.inline.limit) return this.putObject(id, head, size, iterator, hash, document);
      const next = await iterator.next();
      if (next.done === true) break;
      hash.update(next.value);
      head.push(next.value);
      size += next.value.length;
    }
    const bytes = head.length === 1 && head[0] !== undefined ? head[0] : Buffer.concat(head);
    const raw = document(size);
    const [, revision] = await Promise.all([this.inline.put(id, bytes, raw.sha256), this.docs.create(id, raw)]);
    this.known.note(id, { doc: { value: raw, revision }, place: { kind: "inline" }, bytes });
    return raw;
  }

  /** The rest of `put` for a raw too large for one message: `head` (already hashed) then the rest of `iterator`. */
  private async putObject(
    id: string,
    head: Uint8Array[],
    headSize: number,
    iterator: AsyncIterator<Uint8Array>,
    hash: ReturnType<typeof createHash>,
    document: (size: number) => RawMessage,
  ): Promise<RawMessage> {
    let size = headSize;
    const stream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const buffered = head.shift();
        if (buffered !== undefined) return controller.enqueue(buffered);
        const next = await iterator.next();
        if (next.done === true) return controller.close();
        hash.update(next.value);
        size += next.value.length;
        controller.enqueue(next.value);
      },
    });
    const info = await this.objects.put({ name: id }, stream);
    const raw = document(size);
    const revision = await this.docs.create(id, raw);
    this.known.note(id, { doc: { value: raw, revision }, place: objectPlace(info) });
    return raw;
  }

  /**
   * Stores the bytes unless the same bytes were stored before under the same `scope` (a sending MTA
   * retrying a message), in which case the earlier raw message is returned with `existing: true`.
   * `trace` (e.g. a Received header) is stored before the bytes but is no part of what is compared: it
   * carries the time of receipt, which differs at every retry.
   *
   * The raw is stored first and its content then claimed, so that a claim always names a raw stored
   * whole, and new bytes (the common case) cost no read. Bytes stored before lose the claim: the new raw,
   * which nobody else knows of, is removed again and the earlier one returned.
   */
  async putOnce(
    userId: string | null,
    bytes: Uint8Array,
    options: { scope?: string; trace?: Uint8Array } = {},
  ): Promise<{ raw: RawMessage; existing: boolean }> {
    const hash = createHash("sha256");
    // Without a scope the key is the hash of the bytes alone, as it always was.
    if (options.scope !== undefined) hash.update(`${options.scope}\n`, "utf8");
    const key = `rawsha.${hash.update(bytes).digest("hex")}`;
    const raw = await this.put(userId, options.trace === undefined ? bytes : chunks([options.trace, bytes]));
    const holder = await this.lookups.claimOrHolder(key, raw.raw_msg_id);
    if (holder === raw.raw_msg_id) return { raw, existing: false };
    const earlier = holder === null ? null : await this.get(holder);
    // A claim naming no raw (removed, or written by a version that claimed before storing): keep ours.
    if (earlier === null) return { raw, existing: false };
    await this.remove(raw.raw_msg_id);
    return { raw: earlier, existing: true };
  }

  /**
   * The raw's document for an import: from memory when this process wrote or read it lately (what an
   * import reads of it, its owner, size and date, never changes; `delivered` may be stale there),
   * otherwise read.
   */
  async forImport(rawId: string): Promise<RawMessage | null> {
    return this.known.doc(rawId)?.value ?? this.get(rawId);
  }

  async get(rawId: string): Promise<RawMessage | null> {
    const found = await this.docs.get(rawId);
    if (found !== null) this.known.note(rawId, { doc: found });
    return found?.value ?? null;
  }

  /** The whole content in memory: for parsers that need it all anyway. */
  async read(rawId: string): Promise<Uint8Array | null> {
    const written = this.known.takeBytes(rawId);
    if (written !== undefined) return written;
    if (this.known.place(rawId)?.kind !== "object") {
      const bytes = await this.inline.get(rawId);
      if (bytes !== null) return bytes;
    }
    return (await this.objects.getBlob(rawId)) ?? this.inline.get(rawId, true);
  }

  /**
   * The content as a stream of chunks. An inline raw is one chunk (from memory when this process has
   * just written it). An object's are read one stored chunk
   * at a time as the reader asks for them, so a slow reader (a parser) never has more than a chunk or two
   * in memory. (The object store's own `get()` pushes every chunk into its stream as fast as the server
   * sends them, whatever the reader.) The content is checked against its digest: an inline raw's before
   * it is given, an object's at the end, a mismatch erroring the stream.
   */
  async stream(rawId: string): Promise<ReadableStream<Uint8Array> | null> {
    // Just written by this process: the bytes it hashed and stored.
    const written = this.known.takeBytes(rawId);
    if (written !== undefined) return whole(written);
    const place = this.known.place(rawId);
    if (place?.kind === "object") return this.streamObject(rawId, place);
    const bytes = await this.inline.get(rawId);
    if (bytes !== null) return whole(bytes);
    const info = await this.objects.info(rawId);
    if (info !== null && !info.deleted) return this.streamObject(rawId, objectPlace(info));
    // A replica answering the direct get may not have had an inline raw written a moment ago.
    const late = await this.inline.get(rawId, true);
    return late === null ? null : whole(late);
  }

  /** The content as a Node stream (see stream), or null when there is none. */
  async readable(rawId: string): Promise<Readable | null> {
    const content = await this.stream(rawId);
    return content === null ? null : Readable.fromWeb(content as NodeReadableStream<Uint8Array>);
  }

  private async streamObject(rawId: string, object: ObjectPlace): Promise<ReadableStream<Uint8Array>> {
    const jsm = await this.chunks.jsm();
    const streamName = `OBJ_${this.chunks.bucket}`;
    const subject = `$O.${this.chunks.bucket}.C.${object.nuid}`;
    const hash = createHash("sha256");
    let seq = 0;
    let read = 0;
    const finish = (controller: ReadableStreamDefaultController<Uint8Array>) => {
      const expected = Buffer.from(object.digest.replace(/^SHA-256=/, ""), "base64");
      if (expected.equals(hash.digest())) controller.close();
      else controller.error(new Error(`raw message ${rawId} is corrupt: its content does not match its digest`));
    };
    return new ReadableStream<Uint8Array>(
      {
        async pull(controller) {
          if (read >= object.size) return finish(controller);
          let chunk = await jsm.direct.getMessage(streamName, { seq: seq + 1, next_by_subj: subject });
          // A replica answering a direct get may not have the last chunks yet: give it a moment.
          for (let attempt = 0; chunk === null && attempt < CHUNK_RETRIES; attempt++) {
            await new Promise((resolve) => setTimeout(resolve, 50));
            chunk = await jsm.direct.getMessage(streamName, { seq: seq + 1, next_by_subj: subject });
          }
          if (chunk === null) return controller.error(new Error(`raw message ${rawId} is truncated: ${read} of ${object.size} bytes found`));
          seq = chunk.seq;
          read += chunk.data.length;
          hash.update(chunk.data);
          controller.enqueue(chunk.data);
          if (read >= object.size) finish(controller);
        },
      },
      { highWaterMark: 1 },
    );
  }

  /**
   * Marks the raw delivered (once imported). A raw this process wrote or read lately is written with one
   * compare-and-swap on the revision it knows, and not at all when it knows it delivered (a raw is never
   * marked undelivered again); otherwise, or when another writer changed it since, it is read first.
   */
  async markDelivered(rawId: string): Promise<void> {
    const known = this.known.doc(rawId) ?? null;
    if (known?.value.delivered === true) return;
    const stored = await this.docs.updateFrom(rawId, known, (raw) => (raw.delivered ? null : { ...raw, delivered: true }));
    if (stored !== null) this.known.note(rawId, { doc: stored });
  }

  /** Removes a raw that nobody else knows of (see putOnce). Left behind if that fails: it is unreachable. */
  async remove(rawId: string): Promise<void> {
    const place = this.known.place(rawId);
    this.known.forget(rawId);
    try {
      await Promise.all([this.docs.delete(rawId), place?.kind === "object" ? this.objects.delete(rawId) : this.inline.delete(rawId)]);
    } catch {
      // An orphan raw costs its bytes, nothing else: no claim or message names it.
    }
  }
}

function objectPlace(info: ObjectInfo): ObjectPlace {
  return { kind: "object", nuid: info.nuid, size: info.size, digest: info.digest };
}

function whole(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      if (bytes.length > 0) controller.enqueue(bytes);
      controller.close();
    },
  });
}

async function* single(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}

async function* chunks(parts: Uint8Array[]): AsyncIterable<Uint8Array> {
  for (const part of parts) yield part;
}
