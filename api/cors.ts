// Cross-origin calls from browsers: none unless CALIOPEN_HTTP_CORS lists origins, and then only from
// those. Registered before authentication so that refusals (401, 429) reach the page readable, and
// preflights (which carry no token) are answered without one.

import cors from "@fastify/cors";
import type { FastifyInstance } from "fastify";

/** Methods and headers the API's routes use; what a page may read of an answer besides its body. */
const METHODS = ["GET", "HEAD", "POST", "PATCH", "DELETE"];
const REQUEST_HEADERS = ["authorization", "content-type"];
const EXPOSED_HEADERS = ["retry-after", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"];
/** How long a browser may reuse a preflight's answer. */
const PREFLIGHT_MAX_AGE_S = 600;

export async function registerCors(app: FastifyInstance, origins: string[]): Promise<void> {
  if (origins.length === 0) return;
  const allowed = new Set(origins);
  await app.register(cors, {
    // Another origin gets no CORS header at all, and its preflight is not answered (it carries no token).
    origin: (origin, callback) => callback(null, origin !== undefined && allowed.has(origin)),
    methods: METHODS,
    allowedHeaders: REQUEST_HEADERS,
    exposedHeaders: EXPOSED_HEADERS,
    maxAge: PREFLIGHT_MAX_AGE_S,
    credentials: false,
  });
}
