// Raw messages: the bytes as received (RFC 5322 mail, a DM event's JSON) in the object store, which
// chunks them, so a large message is streamed in and out instead of held whole; a small KV document
// keeps what the services ask about it (owner, size, hash, delivered).
import { createHash, randomUUID } from "node:crypto";
import type { JetStreamManager } from "@nats-io/jetstream";
import type { ObjectStore } from "@nats-io/obj";
import type { KvDocuments } from "../../runtime/kv-documents.ts";
import type { Lookups } from "./lookups.ts";
import { SCHEMA_VERSION, type RawMessage } from "./model.ts";

/** Where the object store keeps the chunks, for `stream()` to read them one by one. */
export interface RawChunkSource {
  /** The object store's bucket name (its stream is `OBJ_<bucket>`). */
  bucket: string;
  jsm: () => Promise<JetStreamManager>;
}

const CHUNK_RETRIES = 20;

export class RawMessageStore {
  constructor(
    private readonly objects: ObjectStore,
    private readonly docs: KvDocuments<RawMessage>,
    private readonly lookups: Lookups,
    private readonly chunks: RawChunkSource,
  ) {}

  /** Stores the bytes (a buffer, or chunks as they arrive) and returns the new raw message. */
  async put(userId: string | null, content: Uint8Array | AsyncIterable<Uint8Array>): Promise<RawMessage> {
    const id = randomUUID();
    const hash = createHash("sha256");
    let size = 0;
    const source = content instanceof Uint8Array ? single(content) : content;
    const iterator = source[Symbol.asyncIterator]();
    const stream = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const next = await iterator.next();
        if (next.done) return controller.close();
        hash.update(next.value);
        size += next.value.length;
        controller.enqueue(next.value);
      },
    });
    await this.objects.put({ name: id }, stream);
    const raw: RawMessage = {
      schema: SCHEMA_VERSION,
      raw_msg_id: id,
      user_id: userId,
      size,
      sha256: hash.digest("hex"),
      delivered: false,
      date_insert: new Date().toISOString(),
    };
    await this.docs.create(id, raw);
    return raw;
  }

  /**
   * Stores the bytes unless the same bytes were stored before under the same `scope` (a sending MTA
   * retrying a message), in which case the earlier raw message is returned with `existing: true`.
   * `trace` (e.g. a Received header) is stored before the bytes but is no part of what is compared: it
   * carries the time of receipt, which differs at every retry.
   */
  async putOnce(userId: string | null, bytes: Uint8Array, options: { scope?: string; trace?: Uint8Array } = {}): Promise<{ raw: RawMessage; existing: boolean }> {
    const hash = createHash("sha256");
    // Without a scope the key is the hash of the bytes alone, as it always was.
    if (options.scope !== undefined) hash.update(`${options.scope}\n`, "utf8");
    const key = `rawsha.${hash.update(bytes).digest("hex")}`;
    const known = await this.lookups.get(key);
    const earlier = known === null ? null : await this.get(known);
    if (earlier !== null) return { raw: earlier, existing: true };
    const raw = await this.put(userId, options.trace === undefined ? bytes : chunks([options.trace, bytes]));
    if (await this.lookups.claim(key, raw.raw_msg_id)) return { raw, existing: false };
    // Another writer stored the same bytes at the same moment: keep theirs.
    const winner = await this.get((await this.lookups.get(key)) ?? raw.raw_msg_id);
    return winner === null ? { raw, existing: false } : { raw: winner, existing: true };
  }

  async get(rawId: string): Promise<RawMessage | null> {
    return (await this.docs.get(rawId))?.value ?? null;
  }

  /** The whole content in memory: for parsers that need it all anyway. */
  async read(rawId: string): Promise<Uint8Array | null> {
    return this.objects.getBlob(rawId);
  }

  /**
   * The content as a stream of chunks, read one stored chunk at a time as the reader asks for them, so
   * a slow reader (a parser) never has more than a chunk or two in memory. (The object store's own
   * `get()` pushes every chunk into its stream as fast as the server sends them, whatever the reader.)
   * The content is checked against the object's digest at the end; a mismatch errors the stream.
   */
  async stream(rawId: string): Promise<ReadableStream<Uint8Array> | null> {
    const info = await this.objects.info(rawId);
    if (info === null || info.deleted) return null;
    const jsm = await this.chunks.jsm();
    const streamName = `OBJ_${this.chunks.bucket}`;
    const subject = `$O.${this.chunks.bucket}.C.${info.nuid}`;
    const hash = createHash("sha256");
    let seq = 0;
    let read = 0;
    const finish = (controller: ReadableStreamDefaultController<Uint8Array>) => {
      const expected = Buffer.from(info.digest.replace(/^SHA-256=/, ""), "base64");
      if (expected.equals(hash.digest())) controller.close();
      else controller.error(new Error(`raw message ${rawId} is corrupt: its content does not match its digest`));
    };
    return new ReadableStream<Uint8Array>(
      {
        async pull(controller) {
          if (read >= info.size) return finish(controller);
          let chunk = await jsm.direct.getMessage(streamName, { seq: seq + 1, next_by_subj: subject });
          // A replica answering a direct get may not have the last chunks yet: give it a moment.
          for (let attempt = 0; chunk === null && attempt < CHUNK_RETRIES; attempt++) {
            await new Promise((resolve) => setTimeout(resolve, 50));
            chunk = await jsm.direct.getMessage(streamName, { seq: seq + 1, next_by_subj: subject });
          }
          if (chunk === null) return controller.error(new Error(`raw message ${rawId} is truncated: ${read} of ${info.size} bytes found`));
          seq = chunk.seq;
          read += chunk.data.length;
          hash.update(chunk.data);
          controller.enqueue(chunk.data);
          if (read >= info.size) finish(controller);
        },
      },
      { highWaterMark: 1 },
    );
  }

  async markDelivered(rawId: string): Promise<void> {
    await this.docs.update(rawId, (raw) => (raw.delivered ? null : { ...raw, delivered: true }));
  }
}

async function* single(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}

async function* chunks(parts: Uint8Array[]): AsyncIterable<Uint8Array> {
  for (const part of parts) yield part;
}
