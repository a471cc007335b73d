// Who comes in, and how often: every request is authenticated, then counted against its token's budget
// (CALIOPEN_HTTP_RATE_LIMIT a minute); a request without a valid token is counted against its client
// address instead (CALIOPEN_HTTP_RATE_LIMIT_IP), so a wrong token never spends a real user's budget.
// An address that has spent its budget is refused before its token is even looked up, whatever the
// token: otherwise a guesser would learn a right guess from the answer, and guessing would not slow
// down. Limits are counted in this node's memory: each node of a deployment allows as much.

import rateLimit, { normalizeIP } from "@fastify/rate-limit";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { User } from "../actors/store/model.ts";
import type { Store } from "../actors/store/store.ts";
import { authenticate } from "./authenticate.ts";
import { HttpError } from "./http-error.ts";
import type { RateLimits } from "./http-settings.ts";

const RATE_WINDOW_MS = 60_000;

/** How many tokens and addresses each limiter remembers; beyond, the least recently seen are forgotten. */
const REMEMBERED_KEYS = 100_000;

/** Answers of the limiter that counted (or only looked at) this request. */
interface Count {
  max: number;
  remaining: number;
  ttlInSeconds: number;
  isExceeded: boolean;
}

type Limiter = (request: FastifyRequest, options?: { increment?: boolean }) => Promise<Count | null>;

declare module "fastify" {
  interface FastifyRequest {
    /** The authenticated user (set for every route under /api/v2 but the OpenAPI document). */
    user: User | null;
  }
}

/** `needsToken`: whether a request must carry a token (the OpenAPI document and paths outside /api/ need none). */
export async function registerAdmission(
  app: FastifyInstance,
  store: Store,
  limits: RateLimits,
  needsToken: (request: FastifyRequest) => boolean,
): Promise<void> {
  await app.register(rateLimit, { global: false });
  app.decorateRequest("user", null);
  // The token a request was admitted with: the per-token limiter's key.
  const tokenIds = new WeakMap<FastifyRequest, string>();
  const perIp = limiter(app, limits.perIp, (request) => normalizeIP(request.ip ?? "unknown"));
  const perToken = limiter(app, limits.perToken, (request) => tokenIds.get(request) ?? "");

  app.addHook("onRequest", async (request, reply) => {
    const seen = await perIp(request, { increment: false });
    if (seen !== null && seen.remaining <= 0) refuse(reply, seen, overAddressBudget(request, seen));
    if (!needsToken(request)) {
      await countAgainstAddress(request, reply, perIp);
      return;
    }
    let admitted: Awaited<ReturnType<typeof authenticate>>;
    try {
      admitted = await authenticate(store, request.headers.authorization);
    } catch (err) {
      // A refused token counts against its address; a store that fails does not.
      if (err instanceof HttpError) await countAgainstAddress(request, reply, perIp);
      throw err;
    }
    request.user = admitted.user;
    tokenIds.set(request, admitted.tokenId);
    const count = await perToken(request);
    if (count === null) return;
    rateHeaders(reply, count);
    if (count.isExceeded) refuse(reply, count, `token ${admitted.tokenId} made more than ${count.max} requests this minute`);
  });
}

async function countAgainstAddress(request: FastifyRequest, reply: FastifyReply, perIp: Limiter): Promise<void> {
  const count = await perIp(request);
  if (count?.isExceeded === true) refuse(reply, count, overAddressBudget(request, count));
}

const overAddressBudget = (request: FastifyRequest, count: Count) =>
  `too many requests without a valid token from ${request.ip} (at most ${count.max} a minute)`;

function limiter(app: FastifyInstance, max: number | null, key: (request: FastifyRequest) => string): Limiter {
  if (max === null) return async () => null;
  // `cache` (the LRU's size) is read by the plugin's store but missing from its option type: passed through a variable.
  const options = { max, timeWindow: RATE_WINDOW_MS, keyGenerator: key, cache: REMEMBERED_KEYS };
  const count = app.createRateLimit(options);
  return async (request, callOptions) => {
    const result = await count(request, callOptions);
    return result.isAllowed ? null : result;
  };
}

function rateHeaders(reply: FastifyReply, count: Count): void {
  void reply.header("x-ratelimit-limit", count.max).header("x-ratelimit-remaining", count.remaining).header("x-ratelimit-reset", count.ttlInSeconds);
}

function refuse(reply: FastifyReply, count: Count, why: string): never {
  const retryAfter = Math.max(1, count.ttlInSeconds);
  rateHeaders(reply, { ...count, remaining: 0 });
  void reply.header("retry-after", retryAfter);
  throw new HttpError(429, `${why}: retry in ${retryAfter} s`);
}
