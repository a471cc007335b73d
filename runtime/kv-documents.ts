// JSON documents in a JetStream KV bucket. Writes that may race use the revision they read
// (compare-and-swap), retried on a fresh read: never last-writer-wins on a whole document.
import { type JetStreamClient, jetstream } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { decodeJson, encodeJson } from "./json.ts";
import { scanLatest } from "./kv-scan.ts";

export interface Versioned<T> {
  value: T;
  revision: number;
}

export class DocumentExists extends Error {
  override readonly name = "DocumentExists";
}

/** A compare-and-swap lost to a concurrent writer more times than allowed. */
export class DocumentContention extends Error {
  override readonly name = "DocumentContention";
}

const CAS_ATTEMPTS = 20;

function isCasConflict(err: unknown): boolean {
  return /wrong last sequence|key exists/i.test((err as Error).message ?? "");
}

export class KvDocuments<T> {
  private constructor(
    private readonly kv: KV,
    private readonly js: JetStreamClient,
    readonly bucket: string,
  ) {}

  /** `ttlMs`: documents go away on their own this long after they were written. */
  static async open<T>(nc: NatsConnection, bucket: string, replicas = 1, options: { ttlMs?: number } = {}): Promise<KvDocuments<T>> {
    const kv = await new Kvm(nc).create(bucket, { history: 1, replicas, ...(options.ttlMs !== undefined && { ttl: options.ttlMs }) });
    return new KvDocuments<T>(kv, jetstream(nc), bucket);
  }

  async get(key: string): Promise<Versioned<T> | null> {
    const entry = await this.kv.get(key);
    if (entry === null || entry.operation !== "PUT") return null;
    const decoded = decodeJson(entry.value);
    if (!decoded.ok) throw new Error(`${this.bucket}/${key} holds unreadable JSON: ${decoded.error}`);
    return { value: decoded.value as T, revision: entry.revision };
  }

  /** Writes a new document; throws DocumentExists when the key is taken. */
  async create(key: string, value: T): Promise<number> {
    try {
      return await this.kv.create(key, encodeJson(value));
    } catch (err) {
      if (isCasConflict(err)) throw new DocumentExists(`${this.bucket}/${key} already exists`);
      throw err;
    }
  }

  /** Overwrites unconditionally: only for documents with a single writer (e.g. lookups owned by one key). */
  async put(key: string, value: T): Promise<number> {
    return this.kv.put(key, encodeJson(value));
  }

  /**
   * Reads, changes and writes back with compare-and-swap, again on a fresh read when another writer got
   * there first. `change` returns the new value, or null to leave the document as it is. Resolves to the
   * stored value (null when the document does not exist).
   */
  async update(key: string, change: (current: T) => T | null): Promise<T | null> {
    return (await this.updateFrom(key, null, change))?.value ?? null;
  }

  /**
   * As update(), starting from a version read or written before instead of reading it: one write when it
   * is still the current one, a fresh read and another try when not. Resolves to the stored version.
   */
  async updateFrom(key: string, known: Versioned<T> | null, change: (current: T) => T | null): Promise<Versioned<T> | null> {
    let current = known;
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      current ??= await this.get(key);
      if (current === null) return null;
      const next = change(current.value);
      if (next === null) return current;
      try {
        return { value: next, revision: await this.kv.update(key, encodeJson(next), current.revision) };
      } catch (err) {
        if (!isCasConflict(err)) throw err;
        current = null;
      }
    }
    throw new DocumentContention(`${this.bucket}/${key} kept changing under ${CAS_ATTEMPTS} attempts to update it`);
  }

  async delete(key: string): Promise<void> {
    await this.kv.purge(key);
  }

  /** Removes the document if it is still the version read (false when another writer changed or took it first). */
  async deleteIf(key: string, revision: number): Promise<boolean> {
    try {
      await this.kv.purge(key, { previousSeq: revision });
      return true;
    } catch (err) {
      if (isCasConflict(err)) return false;
      throw err;
    }
  }

  /** Keys matching a subject-style filter (`user.*`, `a.>`), in no particular order. */
  async keys(filter = ">"): Promise<string[]> {
    const out: string[] = [];
    for await (const key of await this.kv.keys(filter)) out.push(key);
    return out;
  }

  /** The documents whose keys match `filter`, read in one pass (no request per document). */
  async values(filter = ">"): Promise<T[]> {
    const found: T[] = [];
    await scanLatest(this.js, this.bucket, filter, (entry) => {
      const decoded = decodeJson(entry.value);
      if (!decoded.ok) throw new Error(`${this.bucket}/${entry.key} holds unreadable JSON: ${decoded.error}`);
      found.push(decoded.value as T);
    });
    return found;
  }
}
