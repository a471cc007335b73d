// Secondary indexes: small KV entries pointing from a value (an address, a Message-ID, a token) to the
// id of the object that has it. Values are hashed into keys, so any string can be looked up.
import { createHash } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import { DocumentExists, KvDocuments } from "../../runtime/kv-documents.ts";

interface LookupEntry {
  target: string;
}

export function hashed(value: string): string {
  return createHash("sha256").update(value, "utf8").digest("hex").slice(0, 40);
}

export class Lookups {
  private constructor(private readonly docs: KvDocuments<LookupEntry>) {}

  static async open(nc: NatsConnection, bucket: string, replicas: number): Promise<Lookups> {
    return new Lookups(await KvDocuments.open<LookupEntry>(nc, bucket, replicas));
  }

  async get(key: string): Promise<string | null> {
    return (await this.docs.get(key))?.value.target ?? null;
  }

  /** Claims `key` for `target`; false when it already points elsewhere (true when it already points at target). */
  async claim(key: string, target: string): Promise<boolean> {
    try {
      await this.docs.create(key, { target });
      return true;
    } catch (err) {
      if (!(err instanceof DocumentExists)) throw err;
      return (await this.get(key)) === target;
    }
  }

  async set(key: string, target: string): Promise<void> {
    await this.docs.put(key, { target });
  }

  async release(key: string): Promise<void> {
    await this.docs.delete(key);
  }

  /** Every key under `filter` (e.g. all users holding an identifier) with its target. */
  async targetsWithKeys(filter: string): Promise<{ key: string; target: string }[]> {
    const keys = await this.docs.keys(filter);
    const found = await Promise.all(keys.map(async (key) => ({ key, target: await this.get(key) })));
    return found.filter((entry): entry is { key: string; target: string } => entry.target !== null);
  }
}
