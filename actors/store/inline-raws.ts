// Raw messages small enough to be one NATS message: each is one message of a KV bucket keyed by the raw's
// id, written with one publish and read with one direct get (an object costs an existence check, a chunk
// and its meta to write, and its meta and chunks to read). The content's sha256 travels in a header, so
// what is read is checked as an object's chunks are.
import { createHash } from "node:crypto";
import type { JetStreamClient, JetStreamManager, StoredMsg } from "@nats-io/jetstream";
import { headers } from "@nats-io/nats-core";

/**
 * The largest raw kept as one message. NATS refuses a message over the server's max_payload (1 MiB by
 * default, headers and all); half of it leaves room for the headers and for a server configured a little
 * lower, and keeps the one buffer a writer holds before it knows which way a streamed raw goes small.
 * Nearly all mail without attachments is far under it; a larger raw is chunked in the object store.
 */
export const INLINE_RAW_MAX_BYTES = 512 * 1024;

/** What the headers of an inline raw may add to its bytes (the bucket's message size limit allows it). */
export const INLINE_RAW_HEADER_ALLOWANCE = 4 * 1024;

const DIGEST_HEADER = "Caliopen-Raw-Sha256";
/** Raw ids are UUIDs; anything else (a dot, a wildcard from a hostile order) never becomes a subject. */
const RAW_ID = /^[0-9A-Za-z_-]{1,64}$/;
const KV_OPERATION_HEADER = "KV-Operation";

/** Where an inline raw's bytes live: a KV bucket (opened by the store). */
export interface InlineRawBucket {
  bucket: string;
  js: JetStreamClient;
  jsm: () => Promise<JetStreamManager>;
  /** The largest raw written here (bytes). */
  limit: number;
}

export class InlineRaws {
  readonly limit: number;
  private readonly stream: string;
  private readonly prefix: string;

  constructor(private readonly place: InlineRawBucket) {
    this.limit = place.limit;
    this.stream = `KV_${place.bucket}`;
    this.prefix = `$KV.${place.bucket}.`;
  }

  /** Writes the bytes of a new raw (its id fresh: nothing to compare with); resolves to its sequence. */
  async put(rawId: string, bytes: Uint8Array, sha256: string): Promise<number> {
    if (!RAW_ID.test(rawId)) throw new Error(`${JSON.stringify(rawId)} is not a raw message id`);
    if (bytes.length > this.limit) throw new Error(`raw message ${rawId} is ${bytes.length} bytes, over the ${this.limit} kept as one message`);
    const h = headers();
    h.set(DIGEST_HEADER, sha256);
    return (await this.place.js.publish(this.prefix + rawId, bytes, { headers: h })).seq;
  }

  /**
   * The bytes, checked against their digest; null when this raw is not stored here. `authoritative` asks
   * the stream's leader instead of any replica (a direct get may be answered by a replica that does not
   * have a raw written a moment ago yet).
   */
  async get(rawId: string, authoritative = false): Promise<Uint8Array | null> {
    if (!RAW_ID.test(rawId)) return null;
    const jsm = await this.place.jsm();
    const query = { last_by_subj: this.prefix + rawId };
    const found = authoritative ? await jsm.streams.getMessage(this.stream, query) : await jsm.direct.getMessage(this.stream, query);
    return found === null ? null : checked(rawId, found);
  }

  /** Removes the raw's bytes (a raw nobody else knows of, see RawMessageStore.putOnce). */
  async delete(rawId: string): Promise<void> {
    if (!RAW_ID.test(rawId)) return;
    await (await this.place.jsm()).streams.purge(this.stream, { filter: this.prefix + rawId });
  }
}

function checked(rawId: string, found: StoredMsg): Uint8Array | null {
  const operation = found.header?.get(KV_OPERATION_HEADER) ?? "";
  if (operation === "DEL" || operation === "PURGE") return null;
  const expected = found.header?.get(DIGEST_HEADER) ?? "";
  if (expected === "" || createHash("sha256").update(found.data).digest("hex") !== expected) {
    throw new Error(`raw message ${rawId} is corrupt: its content does not match its digest`);
  }
  return found.data;
}
