// The HTTP JSON API (the apiv2 role): clients create identities, contacts, keys and drafts; each
// operation persists its object, then emits the contract's order. Requests are validated against the
// JSON schemas in schemas/, which also make the OpenAPI document.

import multipart from "@fastify/multipart";
import swagger from "@fastify/swagger";
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { Conflict, NotFound } from "../actors/store/errors.ts";
import { VERSION } from "../runtime/version.ts";
import { registerAdmission } from "./admission.ts";
import type { ApiContext } from "./api-context.ts";
import { bodyLimitOf, formatBytes, NO_BODY_LIMIT } from "./body-limits.ts";
import { clientErrorHandler } from "./client-errors.ts";
import { registerCors } from "./cors.ts";
import { DASHBOARD_DATA_PREFIX, registerDashboardHeaders } from "./dashboard-headers.ts";
import { trustProxyOption, warnOfUntrustedForwarding } from "./forwarded-for.ts";
import { errorBody, HttpError } from "./http-error.ts";
import { createApiServer } from "./http-server.ts";
import { DEFAULT_HTTP_SETTINGS, type HttpSettings } from "./http-settings.ts";
import { adminRoutes } from "./routes/admin.ts";
import { contactRoutes } from "./routes/contacts.ts";
import { dashboardDataRoutes } from "./routes/dashboard-data.ts";
import { dashboardPageRoutes } from "./routes/dashboard-page.ts";
import { discussionRoutes } from "./routes/discussions.ts";
import { draftAttachmentRoutes } from "./routes/draft-attachments.ts";
import { identityRoutes } from "./routes/identities.ts";
import { messageContentRoutes } from "./routes/message-content.ts";
import { messageRoutes } from "./routes/messages.ts";
import { API_METRICS_PATH, metricsRoutes } from "./routes/metrics.ts";
import { notificationRoutes } from "./routes/notifications.ts";
import { OAUTH2_CALLBACK_PATH, oauth2AuthorizationRoutes } from "./routes/oauth2-authorizations.ts";
import { privateKeyRoutes } from "./routes/private-keys.ts";
import { publicKeyRoutes } from "./routes/public-keys.ts";
import { userRoutes } from "./routes/users.ts";
import { SHARED_SCHEMAS } from "./schemas/shared-schemas.ts";
import { compileValidator } from "./validators.ts";

export const OPENAPI_PATH = "/api/v2/openapi.json";

export async function buildApi(context: ApiContext, settings: HttpSettings = DEFAULT_HTTP_SETTINGS): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    // Each route gets its own limit as it is added (body-limits.ts); this is for those Fastify adds.
    bodyLimit: NO_BODY_LIMIT,
    trustProxy: trustProxyOption(settings.trustedProxies),
    serverFactory: (handler) => createApiServer(settings, handler),
    clientErrorHandler: clientErrorHandler(settings.timeouts),
  });
  app.setValidatorCompiler(compileValidator);
  await app.register(swagger, {
    openapi: {
      openapi: "3.0.3",
      info: {
        title: "Caliopen API",
        version: VERSION,
        description: "The apiv2 role: every operation persists its object, then emits the order of the Caliopen messaging contract.",
      },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
      security: [{ bearer: [] }],
    },
  });
  for (const schema of SHARED_SCHEMAS) app.addSchema(schema);

  warnOfUntrustedForwarding(app, settings.trustedProxies, context.logger);
  // CORS first: its headers then go on refusals too, and preflights need no token.
  await registerCors(app, settings.corsOrigins);
  // File uploads (a draft's attachments) stream through busboy; each route sets its own limits.
  await app.register(multipart, { limits: { files: 1, fields: 0, parts: 1, headerPairs: 20 } });
  registerDashboardHeaders(app);
  // /metrics is outside /api/ (where Prometheus looks) but admitted like the API: a token, counted; so
  // is the dashboard's data (its page needs none).
  // The OAuth2 callback is where a provider sends a browser back: its state is its proof, not a token.
  const needsToken = (request: FastifyRequest) =>
    (request.url !== OPENAPI_PATH && request.url.startsWith("/api/") && request.url.split("?")[0] !== OAUTH2_CALLBACK_PATH) ||
    request.url.split("?")[0] === API_METRICS_PATH ||
    request.url.startsWith(DASHBOARD_DATA_PREFIX);
  await registerAdmission(app, context.store, settings.rateLimits, needsToken);

  app.setErrorHandler((err: FastifyError | Error, request: FastifyRequest, reply: FastifyReply) => {
    const { status, body } = describeError(err, request);
    if (status >= 500)
      context.logger.error({ method: request.method, url: request.routeOptions.url, err: err.message, stack: err.stack }, "API request failed");
    void reply.code(status).send(body);
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send(errorBody(404, `no route ${request.method} ${request.url.split("?")[0]}`));
  });

  // Every operation may fail with the same error body; the document says so once for all, with the
  // refusals at the edges: over the rate limit, over the route's body limit.
  app.addHook("onRoute", (route) => {
    // A route that sets its own (a file upload, by the platform's mail size) keeps it.
    route.bodyLimit ??= bodyLimitOf(route);
    if (route.schema === undefined || route.schema.hide === true) return;
    route.schema.response = {
      ...(route.schema.response as object),
      ...(route.schema.body !== undefined && {
        413: { description: `The body is over this operation's limit of ${formatBytes(route.bodyLimit)}`, $ref: "Error#" },
      }),
      429: {
        description: "Too many requests from this token (or, without a valid token, from this address): Retry-After says in how many seconds to try again",
        headers: RATE_HEADERS,
        $ref: "Error#",
      },
      "4xx": { $ref: "Error#" },
      "5xx": { $ref: "Error#" },
    };
  });
  app.get(OPENAPI_PATH, { schema: { hide: true } }, async () => app.swagger());
  await app.register(async (scoped) => {
    userRoutes(scoped, context);
    identityRoutes(scoped, context);
    oauth2AuthorizationRoutes(scoped, context);
    contactRoutes(scoped, context);
    publicKeyRoutes(scoped, context);
    privateKeyRoutes(scoped, context);
    messageRoutes(scoped, context);
    messageContentRoutes(scoped, context);
    draftAttachmentRoutes(scoped, context);
    discussionRoutes(scoped, context);
    adminRoutes(scoped, context);
    metricsRoutes(scoped, context);
    dashboardPageRoutes(scoped);
    dashboardDataRoutes(scoped, context, settings.dashboard);
    notificationRoutes(scoped, context, settings.notifications);
  });
  await app.ready();
  return app;
}

const RATE_HEADERS = { "retry-after": { type: "integer", description: "seconds until the budget is renewed" } };

function describeError(err: FastifyError | Error, request: FastifyRequest): { status: number; body: ReturnType<typeof errorBody> } {
  if (err instanceof HttpError) return { status: err.status, body: errorBody(err.status, err.message, err.field) };
  if (err instanceof NotFound) return { status: 404, body: errorBody(404, err.message) };
  if (err instanceof Conflict) return { status: 409, body: errorBody(409, err.message) };
  const fastifyError = err as FastifyError;
  if (fastifyError.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
    return {
      status: 413,
      body: errorBody(413, `the request body is over this operation's limit of ${formatBytes(request.routeOptions.bodyLimit ?? NO_BODY_LIMIT)}`),
    };
  }
  // Bodies are bounded, but a change can still make an object too large for one NATS message (a
  // draft's plain and HTML parts, each under the limit): refused, nothing stored.
  if (err.name === "InvalidArgumentError" && /max_payload/.test(err.message)) {
    return { status: 413, body: errorBody(413, "the object would be too large to store (over the NATS server's max_payload): nothing was changed") };
  }
  if (fastifyError.validation !== undefined && fastifyError.validation.length > 0) {
    const problem = fastifyError.validation[0] as { instancePath: string; message?: string; params: Record<string, unknown> };
    const path = problem.instancePath.replace(/^\//, "").split("/").filter(Boolean);
    const extra = (problem.params.missingProperty ?? problem.params.additionalProperty) as string | undefined;
    if (extra !== undefined) path.push(extra);
    const where = fastifyError.validationContext ?? "body";
    const field = path.length > 0 ? path.join(".") : where;
    const what = problem.params.additionalProperty !== undefined ? "is not a known field" : (problem.message ?? "is invalid");
    return { status: 400, body: errorBody(400, `${where} ${field === where ? "" : `field "${field}" `}${what}`, field) };
  }
  const status = typeof fastifyError.statusCode === "number" && fastifyError.statusCode >= 400 ? fastifyError.statusCode : 500;
  return { status, body: errorBody(status, status === 500 ? "internal error (logged on the server)" : err.message) };
}

export interface RunningApi {
  url: string;
  close(): Promise<void>;
}

/** An API built but not yet listening. */
export interface PreparedApi {
  listen(listen: { host: string; port: number }): Promise<RunningApi>;
  close(): Promise<void>;
}

/**
 * Builds the API (its routes' schemas compiled): a few hundred ms of CPU, more on a busy machine, that a
 * node spends before it joins its cluster, where so long a pause would stop its heartbeats.
 */
export async function prepareApi(context: ApiContext, settings: HttpSettings = DEFAULT_HTTP_SETTINGS): Promise<PreparedApi> {
  const app = await buildApi(context, settings);
  return {
    listen: async (listen) => {
      try {
        await app.listen({ host: listen.host, port: listen.port });
      } catch (err) {
        await app.close();
        throw new Error(`the HTTP API cannot listen on ${listen.host}:${listen.port}: ${(err as Error).message}`);
      }
      const address = app.server.address();
      const port = typeof address === "object" && address !== null ? address.port : listen.port;
      const host = listen.host.includes(":") ? `[${listen.host}]` : listen.host;
      return { url: `${settings.tls === null ? "http" : "https"}://${host}:${port}`, close: () => app.close() };
    },
    close: () => app.close(),
  };
}

export async function startApi(
  context: ApiContext,
  listen: { host: string; port: number },
  settings: HttpSettings = DEFAULT_HTTP_SETTINGS,
): Promise<RunningApi> {
  return (await prepareApi(context, settings)).listen(listen);
}
