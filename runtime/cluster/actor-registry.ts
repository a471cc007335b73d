// Which keyed actors exist, by shard: written when an actor is added, removed when it is removed, read
// by whichever node takes a shard over so that it can start the shard's actors. An entry also says
// whether its actor rests (resting-index.ts): then the next owner arms a timer instead of restoring it.
import { jetstream } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { decodeJson, encodeJson, isJsonObject } from "../json.ts";
import { KeyTurns } from "../key-turns.ts";
import { scanLatest } from "../kv-scan.ts";
import { keyFromToken, subjectToken } from "../subjects.ts";

export interface RegisteredActor {
  kind: string;
  key: string;
  input: Record<string, unknown>;
  /** Present when the actor rests: when it must be woken (null: only when a message comes for it). */
  wakeAt?: number | null;
}

/** Another process rewriting the same entry meanwhile is rare (a node taking the shard over): a few tries. */
const CHANGE_ATTEMPTS = 5;

export class ActorRegistry {
  /** One entry's writes land in the order they were asked. */
  private readonly writes = new KeyTurns();

  constructor(
    private readonly kv: KV,
    private readonly nc: NatsConnection,
    private readonly bucket: string,
  ) {}

  add(shard: number, actor: RegisteredActor): Promise<void> {
    const { wakeAt: _awake, ...entry } = actor;
    return this.write(keyOf(shard, actor.kind, actor.key), () => this.kv.put(keyOf(shard, actor.kind, actor.key), encodeJson(entry)));
  }

  /** Records that the actor rests until `wakeAt` (null: until a message comes), if it is still registered. */
  rest(shard: number, actor: RegisteredActor, wakeAt: number | null): Promise<void> {
    return this.change(keyOf(shard, actor.kind, actor.key), (entry) => ({ ...entry, wakeAt }));
  }

  /** Records that the actor is awake (it is restored at once by a next owner), if it is still registered. */
  wake(shard: number, kind: string, key: string): Promise<void> {
    return this.change(keyOf(shard, kind, key), ({ wakeAt: _resting, ...entry }) => entry);
  }

  remove(shard: number, kind: string, key: string): Promise<void> {
    const kvKey = keyOf(shard, kind, key);
    return this.write(kvKey, () => this.kv.purge(kvKey));
  }

  /** The shard's actors, read in one pass over the bucket. */
  async list(shard: number): Promise<RegisteredActor[]> {
    const actors: RegisteredActor[] = [];
    await scanLatest(jetstream(this.nc), this.bucket, `${shard}.>`, (entry) => {
      const actor = readEntry(entry.key, entry.value);
      if (actor !== null) actors.push(actor);
    });
    return actors;
  }

  /** The keys of every registered actor of a kind, whatever its shard (keys only: no value is read). */
  async keysOf(kind: string): Promise<Set<string>> {
    const keys = new Set<string>();
    for await (const kvKey of await this.kv.keys(`*.${subjectToken(kind)}.*`)) keys.add(keyFromToken(kvKey.split(".")[2] ?? ""));
    return keys;
  }

  /**
   * Rewrites an existing entry by compare-and-swap; a removed one stays removed (a rest or a wake that
   * comes after the actor's removal must not bring its entry back).
   */
  private change(kvKey: string, edit: (entry: Record<string, unknown>) => Record<string, unknown>): Promise<void> {
    return this.write(kvKey, async () => {
      for (let attempt = 0; attempt < CHANGE_ATTEMPTS; attempt++) {
        const current = await this.kv.get(kvKey);
        if (current === null || current.operation !== "PUT") return;
        const decoded = decodeJson(current.value);
        if (!decoded.ok || !isJsonObject(decoded.value)) return;
        try {
          await this.kv.update(kvKey, encodeJson(edit(decoded.value)), current.revision);
          return;
        } catch (err) {
          if (!/wrong last sequence/i.test((err as Error).message)) throw err;
        }
      }
    });
  }

  private write(kvKey: string, operation: () => Promise<unknown>): Promise<void> {
    return this.writes.run(kvKey, operation).then(() => undefined);
  }
}

function readEntry(kvKey: string, value: Uint8Array): RegisteredActor | null {
  const decoded = decodeJson(value);
  if (!decoded.ok || !isJsonObject(decoded.value)) return null;
  const [, kind = "", token = ""] = kvKey.split(".");
  const input = isJsonObject(decoded.value.input) ? decoded.value.input : {};
  const actor: RegisteredActor = { kind, key: keyFromToken(token), input };
  if ("wakeAt" in decoded.value) {
    const wakeAt = decoded.value.wakeAt;
    // Anything else than a time or null is not a rest this runtime wrote: the actor is restored at once.
    if (wakeAt === null || (typeof wakeAt === "number" && Number.isFinite(wakeAt))) actor.wakeAt = wakeAt;
  }
  return actor;
}

function keyOf(shard: number, kind: string, key: string): string {
  return `${shard}.${kind}.${subjectToken(key)}`;
}
