// GET /metrics on the API's listener, for admins only: the API may face the Internet, and even figures
// without user data tell an outsider how busy the platform is. Prometheus sends an admin's token
// (`authorization` in its scrape config); the open listener for it is CALIOPEN_METRICS.
import type { FastifyInstance } from "fastify";
import { type ApiContext, userOf } from "../api-context.ts";
import { HttpError } from "../http-error.ts";

export const API_METRICS_PATH = "/metrics";

export function metricsRoutes(app: FastifyInstance, context: ApiContext): void {
  const { metrics } = context;
  if (metrics === undefined) return;
  app.get(API_METRICS_PATH, { schema: { hide: true } }, async (request, reply) => {
    if (!userOf(request).admin) throw new HttpError(403, "only an admin may read the metrics");
    const { contentType, text } = await metrics.scrape();
    return reply.type(contentType).send(text);
  });
}
