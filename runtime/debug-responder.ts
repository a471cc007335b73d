// Every node answers the debug subjects; the CLI and any dashboard read only these.
//   caliopen.debug.nodes               → one reply per node: who it is, what it runs
//   caliopen.debug.actors              → one reply per node: its actors (filter/page with {kind, node, limit, offset})
//   caliopen.debug.actor.<kind>.<key>  → every node replies; the owner with the redacted snapshot
//   caliopen.debug.transitions.<kind>.<key> is published by the actors themselves.
// Anyone on the bus may ask: queries are bounded, and no reply is larger than the connection's
// max_payload (a page of actors is cut short, and says where to go on from).
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { ActorHost } from "./actor-host.ts";
import { decodeBusJson, encodeJson, isJsonObject } from "./json.ts";
import type { Subjects } from "./subjects.ts";
import { isSafeReplySubject, keyFromToken, MAX_ACTOR_KEY_LENGTH } from "./subjects.ts";

const DEFAULT_PAGE = 500;
/** The most actors one reply lists, whatever `limit` asks for. */
export const MAX_PAGE = 1_000;
const MAX_NAME_LENGTH = 128;
/** Room left under max_payload for NATS headers and the reply's other fields. */
const REPLY_MARGIN_BYTES = 4 * 1024;
/** nats-server's default, for a connection that has not received the server's INFO yet. */
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
/** Returned by a handler when this node is not the one asked. */
const NO_ANSWER = Symbol("no answer");

interface ActorsQuery {
  kind?: string;
  node?: string;
  limit: number;
  offset: number;
}

export class DebugResponder {
  private subscriptions: Subscription[] = [];

  constructor(
    private readonly nc: NatsConnection,
    private readonly subjects: Subjects,
    private readonly host: ActorHost,
    private readonly nodeId: string,
    private readonly describeNode: () => Record<string, unknown>,
    private readonly logger: Logger,
  ) {}

  start(): void {
    const on = (subject: string, handle: (msg: Msg) => unknown) =>
      this.nc.subscribe(subject, {
        callback: (err, msg) => {
          if (err !== null || !msg.reply) return;
          if (!isSafeReplySubject(msg.reply)) {
            this.logger.warn({ subject: msg.subject, replyLength: msg.reply.length }, "debug request with an unusable reply subject dropped without a reply");
            return;
          }
          try {
            const answer = handle(msg);
            if (answer !== NO_ANSWER) msg.respond(this.fitting(answer));
          } catch (error) {
            this.logger.error({ subject: msg.subject, err: (error as Error).message }, "debug request failed");
            msg.respond(encodeJson(this.error((error as Error).message)));
          }
        },
      });
    this.subscriptions = [
      on(this.subjects.debug("nodes"), () => this.describeNode()),
      on(this.subjects.debug("actors"), (msg) => this.listActors(msg)),
      on(this.subjects.debug("actor.>"), (msg) => this.inspectActor(msg)),
    ];
  }

  stop(): void {
    for (const subscription of this.subscriptions) subscription.unsubscribe();
    this.subscriptions = [];
  }

  /** Bytes a reply may take on this connection. */
  private replyBudget(): number {
    return (this.nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD) - REPLY_MARGIN_BYTES;
  }

  /** The encoded answer, or an error saying it was too large (the handlers keep within the budget). */
  private fitting(answer: unknown): Uint8Array {
    const encoded = encodeJson(answer);
    if (encoded.length <= this.replyBudget()) return encoded;
    return encodeJson(this.error(`the reply (${encoded.length} bytes) is over this connection's max_payload (${this.replyBudget()} bytes usable)`));
  }

  private error(message: string): Record<string, unknown> {
    return { error: true, message, node: this.nodeId };
  }

  private listActors(msg: Msg): unknown {
    const query = readActorsQuery(msg.data);
    if (typeof query === "string") return this.error(query);
    if (query.node !== undefined && query.node !== this.nodeId) return NO_ANSWER;
    const cells = this.host.list().filter((cell) => query.kind === undefined || cell.kind === query.kind);
    const budget = this.replyBudget() - 1024;
    const actors: unknown[] = [];
    let bytes = 0;
    let cut = false;
    for (const cell of cells.slice(query.offset, query.offset + query.limit)) {
      const summary = cell.summary();
      bytes += encodeJson(summary).length + 1;
      if (bytes > budget) {
        cut = true;
        break;
      }
      actors.push(summary);
    }
    const next = query.offset + actors.length;
    return {
      node: this.nodeId,
      at: new Date().toISOString(),
      total: cells.length,
      offset: query.offset,
      limit: query.limit,
      actors,
      // Where the next page starts, or null when this one reached the end.
      next_offset: next < cells.length ? next : null,
      ...(cut && { truncated: `page cut at ${actors.length} actors to fit this connection's max_payload; ask again from next_offset` }),
    };
  }

  private inspectActor(msg: Msg): unknown {
    const path = this.subjects.local(msg.subject).split(".").slice(3);
    const [kind, token] = path;
    if (path.length !== 2 || kind === undefined || token === undefined || kind.length > MAX_NAME_LENGTH || token.length > 2 * MAX_ACTOR_KEY_LENGTH) {
      return this.error(
        `expected caliopen.debug.actor.<kind>.<key> with a kind of at most ${MAX_NAME_LENGTH} and a key of at most ${MAX_ACTOR_KEY_LENGTH} characters`,
      );
    }
    const cell = this.host.get(kind, keyFromToken(token));
    if (cell === undefined) return { found: false, node: this.nodeId };
    const actor = cell.inspect();
    const size = encodeJson(actor).length;
    if (size <= this.replyBudget() - 1024) return { found: true, node: this.nodeId, actor };
    // The context is what grows: left out, with the rest of the summary.
    return {
      found: true,
      node: this.nodeId,
      actor: { ...actor, context: null, truncated: `the snapshot is ${size} bytes, over this connection's max_payload: context left out` },
    };
  }
}

/** The `caliopen.debug.actors` query, bounded, or why it is refused. */
function readActorsQuery(data: Uint8Array): ActorsQuery | string {
  if (data.length === 0) return { limit: DEFAULT_PAGE, offset: 0 };
  const decoded = decodeBusJson(data);
  if (!decoded.ok) return decoded.error;
  if (!isJsonObject(decoded.value)) return "the query must be a JSON object {kind?, node?, limit?, offset?}";
  const { kind, node, limit, offset } = decoded.value;
  for (const [name, value] of [
    ["kind", kind],
    ["node", node],
  ] as const) {
    if (value !== undefined && (typeof value !== "string" || value.length > MAX_NAME_LENGTH))
      return `"${name}" must be a string of at most ${MAX_NAME_LENGTH} characters`;
  }
  for (const [name, value] of [
    ["limit", limit],
    ["offset", offset],
  ] as const) {
    if (value !== undefined && (typeof value !== "number" || !Number.isFinite(value) || value < 0)) return `"${name}" must be a number >= 0`;
  }
  return {
    ...(typeof kind === "string" && { kind }),
    ...(typeof node === "string" && { node }),
    // More than MAX_PAGE is served as MAX_PAGE: the reply's `limit` and `next_offset` say so.
    limit: typeof limit === "number" ? Math.min(Math.floor(limit), MAX_PAGE) : DEFAULT_PAGE,
    offset: typeof offset === "number" ? Math.min(Math.floor(offset), Number.MAX_SAFE_INTEGER) : 0,
  };
}
