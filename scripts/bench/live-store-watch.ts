// What the live-accounts scenario reads of the platform's data as it changes (KV watches, updates only):
// when each Message-ID was first stored and in how many message documents, how many raws were stored for
// the same bytes (a mail fetched twice), and each poll tick of the identities it follows (`last_poll`
// against the `next_poll` the previous tick set).
import { Kvm, type KvWatchEntry } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { StoredIdentity } from "../../actors/store/identities.ts";
import type { Message, RawMessage } from "../../actors/store/model.ts";
import { decodeJson } from "../../runtime/json.ts";
import { epochNow } from "./stats.ts";

export interface StoredMail {
  /** Epoch ms the first document with this Message-ID was seen. */
  at: number;
  /** Message document keys holding it. */
  keys: Set<string>;
  /** A document listed a conflicting copy under it. */
  conflicted: boolean;
}

export interface PollTick {
  identityId: string;
  /** Epoch ms the tick was due, and when it ran. */
  dueAt: number;
  ranAt: number;
}

export interface StoreWatch {
  stored: Map<string, StoredMail>;
  /** Raw document ids by the sha256 of their bytes. */
  raws: Map<string, Set<string>>;
  ticks: PollTick[];
  stop(): void;
}

async function follow(nc: NatsConnection, bucket: string, onEntry: (entry: KvWatchEntry) => void): Promise<() => void> {
  const kv = await new Kvm(nc).open(bucket);
  const watch = await kv.watch({ key: ">", include: "updates" });
  void (async () => {
    for await (const entry of watch) if (entry.operation === "PUT") onEntry(entry);
  })();
  return () => watch.stop();
}

function decoded<T>(entry: KvWatchEntry): T | null {
  const value = decodeJson(entry.value);
  return value.ok && typeof value.value === "object" && value.value !== null ? (value.value as T) : null;
}

/** Watches the messages, raws and identities buckets; ticks only of `polledIdentities`. */
export async function watchStore(nc: NatsConnection, polledIdentities: ReadonlySet<string>): Promise<StoreWatch> {
  const stored = new Map<string, StoredMail>();
  const raws = new Map<string, Set<string>>();
  const ticks: PollTick[] = [];
  const nextPoll = new Map<string, { lastPoll: string | null; nextPoll: string | null }>();
  const stops = await Promise.all([
    follow(nc, "caliopen_messages", (entry) => {
      const message = decoded<Message>(entry);
      const id = message?.external_references?.message_id;
      if (message === null || typeof id !== "string") return;
      const known = stored.get(id) ?? { at: epochNow(), keys: new Set<string>(), conflicted: false };
      known.keys.add(entry.key);
      if ((message.message_id_conflicts?.length ?? 0) > 0 || (message.message_id_conflicts_omitted ?? 0) > 0) known.conflicted = true;
      stored.set(id, known);
    }),
    follow(nc, "caliopen_raw_messages", (entry) => {
      const raw = decoded<RawMessage>(entry);
      if (raw === null || typeof raw.sha256 !== "string") return;
      const ids = raws.get(raw.sha256) ?? new Set<string>();
      ids.add(raw.raw_msg_id);
      raws.set(raw.sha256, ids);
    }),
    follow(nc, "caliopen_identities", (entry) => {
      const identity = decoded<StoredIdentity>(entry);
      if (identity === null || !polledIdentities.has(identity.identity_id)) return;
      const lastPoll = typeof identity.infos?.last_poll === "string" ? identity.infos.last_poll : null;
      const next = typeof identity.infos?.next_poll === "string" ? identity.infos.next_poll : null;
      const previous = nextPoll.get(identity.identity_id);
      // A new tick: last_poll moved on, and the previous write said when it was due.
      if (previous !== undefined && lastPoll !== null && lastPoll !== previous.lastPoll && previous.nextPoll !== null)
        ticks.push({ identityId: identity.identity_id, dueAt: Date.parse(previous.nextPoll), ranAt: Date.parse(lastPoll) });
      nextPoll.set(identity.identity_id, { lastPoll, nextPoll: next });
    }),
  ]);
  return {
    stored,
    raws,
    ticks,
    stop: () => {
      for (const stop of stops) stop();
    },
  };
}
