// Reads the debug subjects every node answers (debug-responder.ts), for the CLI and the dashboard: one
// request, one reply per node, gathered until the replies stop coming.
import { Empty, type NatsConnection, NoRespondersError, RequestError } from "@nats-io/transport-node";
import type { ActorSummary } from "./actor-cell.ts";
import { decodeJson, encodeJson, isJsonObject } from "./json.ts";
import { type Subjects, subjectToken } from "./subjects.ts";

export type JsonObject = Record<string, unknown>;

/** After the first reply, how long a silence means every node has answered. */
const STALL_MS = 300;
export const DEFAULT_MAX_WAIT_MS = 2_000;
/** The page size the CLI asks for; the node's own default is the same. */
export const ACTORS_PAGE = 500;

export interface ActorListing {
  actors: ActorSummary[];
  /** Live actors matching the query, on all the nodes that answered. */
  total: number;
  nodes: string[];
}

export interface InspectResult {
  /** The nodes that answered. */
  asked: number;
  found: { node: string; actor: JsonObject }[];
}

export class DebugClient {
  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    private readonly maxWaitMs: number,
    /** Told about replies that are errors or not JSON, which are left out of the results. */
    private readonly warn: (message: string) => void,
  ) {}

  /** Every node's description, sorted by node id. */
  async nodes(): Promise<JsonObject[]> {
    const replies = await this.ask("nodes");
    return replies.sort((a, b) => String(a.node).localeCompare(String(b.node)));
  }

  /**
   * The live actors of every node, sorted by kind and key. Each node answers one page per request; a
   * node with more actors than one page is asked again at the next offset (the request goes to all
   * nodes, only the replies of the nodes that still have actors to give are kept).
   */
  async actors(query: { kind?: string; node?: string; limit?: number }): Promise<ActorListing> {
    const wanted = query.limit ?? Number.POSITIVE_INFINITY;
    const pageSize = Math.min(ACTORS_PAGE, wanted);
    const perNode = new Map<string, { total: number; actors: Map<string, ActorSummary> }>();
    let stillGiving: Set<string> | null = null;
    for (let offset = 0; stillGiving === null || stillGiving.size > 0; offset += pageSize) {
      const asking: Set<string> | null = stillGiving;
      stillGiving = new Set();
      for (const reply of await this.ask("actors", {
        ...(query.kind !== undefined && { kind: query.kind }),
        // With a node, only that node answers.
        ...(query.node !== undefined && { node: query.node }),
        limit: pageSize,
        offset,
      })) {
        const node = String(reply.node);
        if ((asking !== null && !asking.has(node)) || !Array.isArray(reply.actors)) continue;
        const entry = perNode.get(node) ?? { total: 0, actors: new Map<string, ActorSummary>() };
        perNode.set(node, entry);
        entry.total = typeof reply.total === "number" ? reply.total : entry.total;
        const page = reply.actors.filter(isActorSummary);
        for (const actor of page) entry.actors.set(`${actor.kind}/${actor.key}`, actor);
        // A short page means the node has nothing more (its list may also have shrunk meanwhile).
        if (page.length === pageSize && entry.actors.size < Math.min(entry.total, wanted)) stillGiving.add(node);
      }
    }
    const all = [...perNode.values()].flatMap((entry) => [...entry.actors.values()]);
    all.sort((a, b) => a.kind.localeCompare(b.kind) || a.key.localeCompare(b.key) || a.node.localeCompare(b.node));
    return {
      actors: all.slice(0, wanted),
      total: [...perNode.values()].reduce((sum, entry) => sum + entry.total, 0),
      nodes: [...perNode.keys()].sort(),
    };
  }

  /** Asks every node for one actor; at most one should have it live. */
  async inspect(kind: string, key: string): Promise<InspectResult> {
    const replies = await this.ask(`actor.${kind}.${subjectToken(key)}`);
    const found = replies.flatMap((reply) => (reply.found === true && isJsonObject(reply.actor) ? [{ node: String(reply.node), actor: reply.actor }] : []));
    return { asked: replies.length, found };
  }

  /** Sends one request on a debug subject and gathers the JSON-object replies of every node. */
  private async ask(path: string, query?: JsonObject): Promise<JsonObject[]> {
    const subject = this.subjects.debug(path);
    const replies: JsonObject[] = [];
    try {
      const messages = await this.nc.requestMany(subject, query === undefined ? Empty : encodeJson(query), {
        strategy: "stall",
        stall: STALL_MS,
        maxWait: this.maxWaitMs,
      });
      for await (const msg of messages) {
        const decoded = decodeJson(msg.data);
        if (!decoded.ok || !isJsonObject(decoded.value)) {
          this.warn(`ignored a reply on ${subject} that is not a JSON object`);
        } else if (decoded.value.error === true) {
          // The node's own words: a caller that prints them strips what a terminal would act on.
          this.warn(`node ${String(decoded.value.node ?? "?")} answered with an error: ${String(decoded.value.message)}`);
        } else {
          replies.push(decoded.value);
        }
      }
    } catch (error) {
      // Nobody subscribed to the debug subject: no node is running (in this namespace).
      if (isNoResponders(error)) return [];
      throw error;
    }
    return replies;
  }
}

export function isNoResponders(error: unknown): boolean {
  return error instanceof NoRespondersError || (error instanceof RequestError && error.isNoResponders());
}

export function noNodesMessage(subjects: Subjects, subject: string): string {
  const where = subjects.namespace === "" ? "" : ` in namespace "${subjects.namespace}"`;
  return `no node answered on ${subject}${where} (is a node running and connected to this NATS?)`;
}

function isActorSummary(value: unknown): value is ActorSummary {
  return isJsonObject(value) && typeof value.kind === "string" && typeof value.key === "string" && typeof value.node === "string";
}
