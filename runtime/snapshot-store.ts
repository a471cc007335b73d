// Actor snapshots in a JetStream KV bucket. Writes are compare-and-swap on the revision the writer last
// saw, so a writer that lost ownership (a stale revision) is refused instead of overwriting.
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { decodeJson, encodeJson, isJsonObject } from "./json.ts";
import { subjectToken } from "./subjects.ts";

export const SNAPSHOT_SCHEMA_VERSION = 1;

export interface StoredSnapshot {
  v: number;
  kind: string;
  key: string;
  snapshot: unknown;
  savedAt: string;
  node: string;
  /** Which process wrote it: unique per run of a node, so a restarted node is not taken for its old self. */
  owner?: string;
  /** Ids of the latest messages this state already reflects: a redelivered one is not applied twice. */
  seen?: string[];
}

export interface LoadedSnapshot {
  record: StoredSnapshot;
  revision: number;
}

/** A record as save() writes it; anything else in the bucket is not a snapshot this runtime can restore. */
function isStoredSnapshot(value: unknown): value is StoredSnapshot {
  if (!isJsonObject(value)) return false;
  const { v, kind, key, savedAt, node, owner, seen } = value;
  return (
    typeof v === "number" &&
    typeof kind === "string" &&
    typeof key === "string" &&
    "snapshot" in value &&
    typeof savedAt === "string" &&
    typeof node === "string" &&
    (owner === undefined || typeof owner === "string") &&
    (seen === undefined || (Array.isArray(seen) && seen.every((id) => typeof id === "string")))
  );
}

export class SnapshotConflict extends Error {
  override readonly name = "SnapshotConflict";
}

export class SnapshotStore {
  private constructor(private readonly kv: KV) {}

  static async open(nc: NatsConnection, bucket: string, replicas = 1): Promise<SnapshotStore> {
    const kvm = new Kvm(nc);
    const kv = await kvm.create(bucket, { history: 1, replicas });
    return new SnapshotStore(kv);
  }

  static keyOf(kind: string, key: string): string {
    return `${kind}.${subjectToken(key)}`;
  }

  async load(kind: string, key: string): Promise<LoadedSnapshot | null> {
    const entry = await this.kv.get(SnapshotStore.keyOf(kind, key));
    if (entry === null || entry.operation !== "PUT") return null;
    const decoded = decodeJson(entry.value);
    if (!decoded.ok || !isStoredSnapshot(decoded.value)) return null;
    return { record: decoded.value, revision: entry.revision };
  }

  /**
   * Saves `record` if the stored revision is still `expectedRevision` (0 = nothing stored yet, or a
   * deleted entry). Returns the new revision; throws SnapshotConflict when someone else wrote meanwhile.
   */
  async save(record: StoredSnapshot, expectedRevision: number): Promise<number> {
    const kvKey = SnapshotStore.keyOf(record.kind, record.key);
    const data = encodeJson(record);
    try {
      if (expectedRevision === 0) return await this.kv.create(kvKey, data);
      return await this.kv.update(kvKey, data, expectedRevision);
    } catch (err) {
      const message = (err as Error).message;
      if (/wrong last sequence|key exists/i.test(message)) {
        throw new SnapshotConflict(`snapshot of ${record.kind}/${record.key} was written by someone else (${message})`);
      }
      throw err;
    }
  }

  async remove(kind: string, key: string): Promise<void> {
    await this.kv.purge(SnapshotStore.keyOf(kind, key));
  }

  async keys(kind: string): Promise<string[]> {
    const out: string[] = [];
    for await (const key of await this.kv.keys(`${kind}.>`)) out.push(key);
    return out;
  }
}
