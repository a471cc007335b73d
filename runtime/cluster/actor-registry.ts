// Which keyed actors exist, by shard: written when an actor is added, removed when it is removed, read
// by whichever node takes a shard over so that it can start the shard's actors.
import type { KV } from "@nats-io/kv";
import { decodeJson, encodeJson, isJsonObject } from "../json.ts";
import { keyFromToken, subjectToken } from "../subjects.ts";

export interface RegisteredActor {
  kind: string;
  key: string;
  input: Record<string, unknown>;
}

export class ActorRegistry {
  constructor(private readonly kv: KV) {}

  async add(shard: number, actor: RegisteredActor): Promise<void> {
    await this.kv.put(keyOf(shard, actor.kind, actor.key), encodeJson({ ...actor, addedAt: new Date().toISOString() }));
  }

  async remove(shard: number, kind: string, key: string): Promise<void> {
    await this.kv.purge(keyOf(shard, kind, key));
  }

  async list(shard: number): Promise<RegisteredActor[]> {
    const keys: string[] = [];
    for await (const key of await this.kv.keys(`${shard}.>`)) keys.push(key);
    const actors = await Promise.all(
      keys.map(async (kvKey) => {
        const entry = await this.kv.get(kvKey);
        if (entry === null || entry.operation !== "PUT") return null;
        const decoded = decodeJson(entry.value);
        if (!decoded.ok || !isJsonObject(decoded.value)) return null;
        const [, kind = "", token = ""] = kvKey.split(".");
        return { kind, key: keyFromToken(token), input: isJsonObject(decoded.value.input) ? decoded.value.input : {} };
      }),
    );
    return actors.filter((actor): actor is RegisteredActor => actor !== null);
  }
}

function keyOf(shard: number, kind: string, key: string): string {
  return `${shard}.${kind}.${subjectToken(key)}`;
}
