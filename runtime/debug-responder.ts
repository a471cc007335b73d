// Every node answers the debug subjects; the CLI and any dashboard read only these.
//   caliopen.debug.nodes               → one reply per node: who it is, what it runs
//   caliopen.debug.actors              → one reply per node: its actors (filter/page with {kind, limit, offset})
//   caliopen.debug.actor.<kind>.<key>  → every node replies; the owner with the redacted snapshot
//   caliopen.debug.transitions.<kind>.<key> is published by the actors themselves.
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { ActorHost } from "./actor-host.ts";
import { decodeJson, encodeJson, isJsonObject } from "./json.ts";
import { keyFromToken } from "./subjects.ts";
import type { Subjects } from "./subjects.ts";

const DEFAULT_PAGE = 500;
/** Returned by a handler when this node is not the one asked. */
const NO_ANSWER = Symbol("no answer");

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
          try {
            const answer = handle(msg);
            if (answer !== NO_ANSWER) msg.respond(encodeJson(answer));
          } catch (error) {
            this.logger.error({ subject: msg.subject, err: (error as Error).message }, "debug request failed");
            msg.respond(encodeJson({ error: true, message: (error as Error).message, node: this.nodeId }));
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

  private listActors(msg: Msg): unknown {
    const decoded = msg.data.length > 0 ? decodeJson(msg.data) : { ok: true as const, value: {} };
    const query = decoded.ok && isJsonObject(decoded.value) ? decoded.value : {};
    if (typeof query.node === "string" && query.node !== this.nodeId) return NO_ANSWER;
    const kind = typeof query.kind === "string" ? query.kind : undefined;
    const limit = typeof query.limit === "number" ? Math.max(0, query.limit) : DEFAULT_PAGE;
    const offset = typeof query.offset === "number" ? Math.max(0, query.offset) : 0;
    const cells = this.host.list().filter((cell) => kind === undefined || cell.kind === kind);
    return {
      node: this.nodeId,
      at: new Date().toISOString(),
      total: cells.length,
      offset,
      actors: cells.slice(offset, offset + limit).map((cell) => cell.summary()),
    };
  }

  private inspectActor(msg: Msg): unknown {
    const path = this.subjects.local(msg.subject).split(".").slice(3);
    const [kind, token] = path;
    if (path.length !== 2 || kind === undefined || token === undefined) {
      return { error: true, message: `expected caliopen.debug.actor.<kind>.<key>, got ${msg.subject}`, node: this.nodeId };
    }
    const cell = this.host.get(kind, keyFromToken(token));
    return cell === undefined ? { found: false, node: this.nodeId } : { found: true, node: this.nodeId, actor: cell.inspect() };
  }
}
