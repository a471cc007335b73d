// The dashboard's data, for admins only: nodes and their shards, actors (filtered), one actor, the IMAP
// accounts' sync progress, dead letters, and a live event stream. The stream is server-sent events
// read with fetch(), so that the token travels in the Authorization header like every other request
// (EventSource could only put it in the URL, where logs and proxies keep it).
import type { FastifyInstance, FastifyRequest } from "fastify";
import { type ApiContext, userOf } from "../api-context.ts";
import { authenticate } from "../authenticate.ts";
import { DASHBOARD_DATA_PREFIX, DASHBOARD_HEADERS } from "../dashboard-headers.ts";
import type { DashboardLimits } from "../dashboard-limits.ts";
import { DashboardReader, MAX_ACTORS_SHOWN, MAX_DEAD_LETTERS } from "../dashboard-reader.ts";
import { DashboardStreams } from "../dashboard-streams.ts";
import { HttpError, notFound } from "../http-error.ts";

const name = { type: "string", minLength: 1, maxLength: 128 };
const hidden = { hide: true };

export function dashboardDataRoutes(app: FastifyInstance, context: ApiContext, limits: DashboardLimits): void {
  const source = context.dashboard;
  if (source === undefined) return;
  const reader = new DashboardReader(source.nc, source.subjects);
  const streams = new DashboardStreams(source.nc, source.subjects, limits, () => reader.nodes(), context.logger);
  app.addHook("preClose", async () => streams.close());
  const path = (rest: string) => `${DASHBOARD_DATA_PREFIX}${rest}`;

  app.get(path("nodes"), { schema: hidden }, async (request) => {
    adminOnly(request);
    return { nodes: await reader.nodes() };
  });

  app.get<{ Querystring: { kind?: string; node?: string; state?: string; limit?: number } }>(
    path("actors"),
    {
      schema: {
        ...hidden,
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: { kind: name, node: name, state: name, limit: { type: "integer", minimum: 1, maximum: MAX_ACTORS_SHOWN } },
        },
      },
    },
    async (request) => {
      adminOnly(request);
      const { limit = 500, ...filters } = request.query;
      return reader.actors({ ...filters, limit });
    },
  );

  app.get<{ Querystring: { kind: string; key: string } }>(
    path("actor"),
    {
      schema: {
        ...hidden,
        querystring: { type: "object", additionalProperties: false, required: ["kind", "key"], properties: { kind: name, key: name } },
      },
    },
    async (request) => {
      adminOnly(request);
      const found = await reader.actor(request.query.kind, request.query.key);
      if (found === null) throw notFound(`live actor ${request.query.kind}/${request.query.key}`);
      return found;
    },
  );

  app.get(path("sync"), { schema: hidden }, async (request) => {
    adminOnly(request);
    return reader.syncProgress();
  });

  app.get<{ Querystring: { limit?: number } }>(
    path("deadletters"),
    {
      schema: {
        ...hidden,
        querystring: { type: "object", additionalProperties: false, properties: { limit: { type: "integer", minimum: 1, maximum: MAX_DEAD_LETTERS } } },
      },
    },
    async (request) => {
      adminOnly(request);
      return reader.deadLetters(request.query.limit ?? 50);
    },
  );

  app.get(path("events"), { schema: hidden }, async (request, reply) => {
    adminOnly(request);
    const authorization = request.headers.authorization;
    // Admission has just read this token; read again for its id, which bounds the streams per token.
    const { tokenId } = await authenticate(context.store, authorization);
    if (streams.stopping) throw new HttpError(503, "this node is stopping: try another node, or again later");
    const refusal = streams.refusal(tokenId);
    if (refusal !== null) {
      void reply.header("retry-after", 10);
      throw new HttpError(429, refusal);
    }
    reply.hijack();
    reply.raw.writeHead(200, { ...DASHBOARD_HEADERS, "content-type": "text/event-stream; charset=utf-8", connection: "keep-alive" });
    reply.raw.flushHeaders();
    streams.attach(tokenId, reply.raw, async () => (await authenticate(context.store, authorization)).user.admin);
  });
}

function adminOnly(request: FastifyRequest): void {
  if (!userOf(request).admin) throw new HttpError(403, "only an admin may use the dashboard");
}
