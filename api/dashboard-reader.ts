// What the dashboard shows, read the way `caliopen nodes`, `actors`, `inspect` and `deadletters` read
// it: from the debug subjects every node answers, the shards bucket and the dead-letter stream. Nothing
// here is a secret: contexts come redacted by the owning node (ActorCell.inspect), dead letters were
// redacted when stored, and both are redacted once more before they leave.
import { JetStreamApiCodes, JetStreamApiError, jetstreamManager } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { ACTOR_KINDS } from "../contract/actor-kinds.ts";
import type { ActorSummary } from "../runtime/actor-cell.ts";
import { DeadLetters } from "../runtime/dead-letters.ts";
import { DebugClient, type JsonObject } from "../runtime/debug-client.ts";
import { decodeJson, isJsonObject } from "../runtime/json.ts";
import { redactSecrets } from "../runtime/redact.ts";
import { type Subjects, subjectToken } from "../runtime/subjects.ts";

/** How long a debug request waits for the nodes' replies. */
const MAX_WAIT_MS = 1_500;
/** Actors read at most for one listing; the filtered page is cut to `limit`. */
const MAX_ACTORS_READ = 5_000;
export const MAX_ACTORS_SHOWN = 1_000;
/** IMAP accounts whose progress is read at once (each is one debug request), and in parallel. */
const MAX_ACCOUNTS = 200;
const ACCOUNT_CONCURRENCY = 8;
export const MAX_DEAD_LETTERS = 100;

export interface NodeView {
  node: string;
  host: unknown;
  version: unknown;
  startedAt: unknown;
  actors: unknown;
  kinds: unknown;
  cluster: unknown;
  deadLettered: unknown;
  /** The shards this node owns, as recorded in the shards bucket. */
  shards: number[];
}

export type ActorView = ActorSummary & { statePath: string };

export interface AccountSync {
  identity_id: string;
  node: string;
  state: string;
  user_id: unknown;
  mailbox: unknown;
  mode: unknown;
  progress: unknown;
  last_sync: unknown;
  last_error: unknown;
  failures: unknown;
  /** The last finished run. */
  last_run: unknown;
  /** The last few finished runs, newest first. */
  runs: unknown[];
}

export class DashboardReader {
  private readonly debug: DebugClient;
  private shardsBucket: Promise<KV> | null = null;

  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
  ) {
    this.debug = new DebugClient(nc, subjects, MAX_WAIT_MS, () => undefined);
  }

  async nodes(): Promise<NodeView[]> {
    const nodes = await this.debug.nodes();
    const shardCount = Math.max(0, ...nodes.map((node) => (isJsonObject(node.cluster) ? Number(node.cluster.shards) || 0 : 0)));
    const owners = await this.shardOwners(shardCount);
    return nodes.map((node) => {
      const id = String(node.node);
      return {
        node: id,
        host: node.host,
        version: node.version,
        startedAt: node.startedAt,
        actors: node.actors,
        kinds: node.kinds,
        cluster: node.cluster,
        deadLettered: node.deadLettered,
        shards: owners.flatMap((owner, shard) => (owner === id ? [shard] : [])),
      };
    });
  }

  /** Live actors, filtered by kind and node (asked of the nodes) and by a part of their state path. */
  async actors(query: { kind?: string; node?: string; state?: string; limit: number }): Promise<{ actors: ActorView[]; total: number; nodes: string[] }> {
    const listing = await this.debug.actors({ ...(query.kind !== undefined && { kind: query.kind }), limit: MAX_ACTORS_READ });
    const matching = listing.actors
      .map((actor) => ({ ...actor, statePath: statePath(actor.state) }))
      .filter((actor) => (query.node === undefined || actor.node === query.node) && (query.state === undefined || actor.statePath.includes(query.state)));
    return { actors: matching.slice(0, query.limit), total: matching.length, nodes: listing.nodes };
  }

  /** One actor as its node shows it (context redacted), or null when no node runs it. */
  async actor(kind: string, key: string): Promise<{ node: string; actor: JsonObject } | null> {
    const { found } = await this.debug.inspect(kind, key);
    const [first] = found;
    if (first === undefined) return null;
    return { node: first.node, actor: { ...(redactSecrets(first.actor) as JsonObject), statePath: statePath(first.actor.state) } };
  }

  /** Each IMAP account's sync: the run in progress (or the last one), its last error and last finished run. */
  async syncProgress(): Promise<{ accounts: AccountSync[]; total: number }> {
    const listing = await this.debug.actors({ kind: ACTOR_KINDS.imap, limit: MAX_ACCOUNTS });
    const accounts: AccountSync[] = [];
    const queue = [...listing.actors];
    const work = async () => {
      for (let actor = queue.shift(); actor !== undefined; actor = queue.shift()) {
        const context = await this.context(actor, listing.nodes.length);
        accounts.push({
          identity_id: actor.key,
          node: actor.node,
          state: statePath(actor.state),
          user_id: context?.user_id,
          mailbox: context?.mailbox,
          mode: context?.mode,
          progress: context?.progress ?? null,
          last_sync: context?.last_sync ?? null,
          last_error: context?.last_error ?? null,
          failures: context?.failures,
          last_run: Array.isArray(context?.history) ? (context.history[0] ?? null) : null,
          runs: Array.isArray(context?.history) ? context.history : [],
        });
      }
    };
    await Promise.all(Array.from({ length: ACCOUNT_CONCURRENCY }, work));
    accounts.sort((a, b) => a.identity_id.localeCompare(b.identity_id));
    return { accounts, total: listing.total };
  }

  /** The newest dead letters of the deployment, newest first. */
  async deadLetters(limit: number): Promise<{ letters: JsonObject[]; total: number }> {
    const jsm = await jetstreamManager(this.nc);
    const stream = DeadLetters.streamName(this.subjects);
    let state: { messages: number; first_seq: number; last_seq: number };
    try {
      state = (await jsm.streams.info(stream)).state;
    } catch (error) {
      if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound) return { letters: [], total: 0 };
      throw error;
    }
    const letters: JsonObject[] = [];
    for (let seq = state.last_seq; seq >= state.first_seq && letters.length < limit && state.messages > 0; seq--) {
      const stored = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
      if (stored === null) continue;
      const decoded = decodeJson(stored.data);
      const letter = decoded.ok && isJsonObject(decoded.value) ? decoded.value : { reason: "(unreadable dead letter)" };
      letters.push({ ...(redactSecrets(letter) as JsonObject), seq });
    }
    return { letters, total: state.messages };
  }

  /** An actor's redacted context, asked of its node directly (every node answers; the others say found: false). */
  private async context(actor: ActorSummary, nodeCount: number): Promise<JsonObject | null> {
    const subject = this.subjects.debug(`actor.${actor.kind}.${subjectToken(actor.key)}`);
    try {
      const replies = await this.nc.requestMany(subject, undefined, { strategy: "count", maxMessages: Math.max(1, nodeCount), maxWait: MAX_WAIT_MS });
      for await (const reply of replies) {
        const decoded = decodeJson(reply.data);
        if (decoded.ok && isJsonObject(decoded.value) && decoded.value.found === true && isJsonObject(decoded.value.actor)) {
          const context = decoded.value.actor.context;
          return isJsonObject(context) ? (redactSecrets(context) as JsonObject) : null;
        }
      }
    } catch {
      // No answer in time: the account is shown without its context.
    }
    return null;
  }

  /** Which node owns each shard (undefined when none is recorded). */
  private async shardOwners(shards: number): Promise<(string | undefined)[]> {
    if (shards === 0) return [];
    this.shardsBucket ??= new Kvm(this.nc).open(this.subjects.resource("caliopen_shards"));
    const kv = await this.shardsBucket.catch((err: unknown) => {
      this.shardsBucket = null;
      throw err;
    });
    return Promise.all(
      Array.from({ length: shards }, async (_, shard) => {
        const entry = await kv.get(`s${shard}`).catch(() => null);
        if (entry === null || entry.operation !== "PUT") return undefined;
        const decoded = decodeJson(entry.value);
        return decoded.ok && isJsonObject(decoded.value) && typeof decoded.value.node === "string" ? decoded.value.node : undefined;
      }),
    );
  }
}

/** `{syncing: "fetching"}` → "syncing.fetching"; parallel regions joined by commas. */
export function statePath(value: unknown): string {
  if (value === null || value === undefined) return "-";
  if (typeof value === "string") return value;
  if (!isJsonObject(value)) return JSON.stringify(value);
  return Object.entries(value)
    .map(([state, inner]) => {
      const rest = statePath(inner);
      return rest === "-" || (isJsonObject(inner) && Object.keys(inner).length === 0) ? state : `${state}.${rest}`;
    })
    .join(", ");
}
