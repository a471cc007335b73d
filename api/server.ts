// The HTTP JSON API (the apiv2 role): clients create identities, contacts, keys and drafts; each
// operation persists its object, then emits the contract's order. Requests are validated against the
// JSON schemas in schemas.ts, which also make the OpenAPI document.
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import swagger from "@fastify/swagger";
import type { Logger } from "pino";
import { Conflict, NotFound } from "../actors/store/errors.ts";
import type { User } from "../actors/store/model.ts";
import type { Store } from "../actors/store/store.ts";
import type { DestinationPolicy } from "../actors/network/destination-policy.ts";
import { VERSION } from "../runtime/version.ts";
import { authenticate } from "./authenticate.ts";
import { errorBody, HttpError } from "./http-error.ts";
import type { OrderEmitter } from "./order-emitter.ts";
import { adminRoutes } from "./routes/admin.ts";
import { contactRoutes } from "./routes/contacts.ts";
import { identityRoutes } from "./routes/identities.ts";
import { messageRoutes } from "./routes/messages.ts";
import { publicKeyRoutes } from "./routes/public-keys.ts";
import { userRoutes } from "./routes/users.ts";
import { SHARED_SCHEMAS } from "./schemas.ts";
import { compileValidator } from "./validators.ts";

export interface ApiContext {
  store: Store;
  emitter: OrderEmitter;
  /** Which servers users may name for their accounts (checked without DNS here, fully at connect time); public addresses only by default. */
  destinations?: DestinationPolicy;
  logger: Logger;
  /** How long a `deliver` request waits for its reply (the contract says 30 s). */
  deliverTimeoutMs: number;
}

declare module "fastify" {
  interface FastifyRequest {
    /** The authenticated user (set for every route under /api/v2 but the OpenAPI document). */
    user: User | null;
  }
}

export const OPENAPI_PATH = "/api/v2/openapi.json";

/** The user a route acts for; the auth hook guarantees it. */
export function userOf(request: FastifyRequest): User {
  if (request.user === null) throw new HttpError(401, "a bearer token is required");
  return request.user;
}

export async function buildApi(context: ApiContext): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    bodyLimit: 12 * 1024 * 1024,
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

  app.decorateRequest("user", null);
  app.addHook("onRequest", async (request) => {
    if (request.url === OPENAPI_PATH || !request.url.startsWith("/api/")) return;
    request.user = await authenticate(context.store, request.headers.authorization);
  });

  app.setErrorHandler((err: FastifyError | Error, request: FastifyRequest, reply: FastifyReply) => {
    const { status, body } = describeError(err);
    if (status >= 500) context.logger.error({ method: request.method, url: request.routeOptions.url, err: err.message, stack: err.stack }, "API request failed");
    void reply.code(status).send(body);
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send(errorBody(404, `no route ${request.method} ${request.url.split("?")[0]}`));
  });

  // Every operation may fail with the same error body; the document says so once for all.
  app.addHook("onRoute", (route) => {
    if (route.schema === undefined || route.schema.hide === true) return;
    route.schema.response = { ...(route.schema.response as object), "4xx": { $ref: "Error#" }, "5xx": { $ref: "Error#" } };
  });
  app.get(OPENAPI_PATH, { schema: { hide: true } }, async () => app.swagger());
  await app.register(async (scoped) => {
    userRoutes(scoped, context);
    identityRoutes(scoped, context);
    contactRoutes(scoped, context);
    publicKeyRoutes(scoped, context);
    messageRoutes(scoped, context);
    adminRoutes(scoped, context);
  });
  await app.ready();
  return app;
}

function describeError(err: FastifyError | Error): { status: number; body: ReturnType<typeof errorBody> } {
  if (err instanceof HttpError) return { status: err.status, body: errorBody(err.status, err.message, err.field) };
  if (err instanceof NotFound) return { status: 404, body: errorBody(404, err.message) };
  if (err instanceof Conflict) return { status: 409, body: errorBody(409, err.message) };
  const fastifyError = err as FastifyError;
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

export async function startApi(context: ApiContext, listen: { host: string; port: number }): Promise<RunningApi> {
  const app = await buildApi(context);
  try {
    await app.listen({ host: listen.host, port: listen.port });
  } catch (err) {
    await app.close();
    throw new Error(`the HTTP API cannot listen on ${listen.host}:${listen.port}: ${(err as Error).message}`);
  }
  const address = app.server.address();
  const port = typeof address === "object" && address !== null ? address.port : listen.port;
  const host = listen.host.includes(":") ? `[${listen.host}]` : listen.host;
  return { url: `http://${host}:${port}`, close: () => app.close() };
}
