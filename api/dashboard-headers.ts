// Headers of everything under /dashboard, refusals included: the page may run only its own script and
// style (no inline code, nothing from elsewhere, no framing), nothing is sniffed into another type,
// and no answer is cached (data is live, and only for admins).
import type { FastifyInstance } from "fastify";

export const DASHBOARD_PATH = "/dashboard";
/** The dashboard's data and event stream: admitted like the API (a token, counted). */
export const DASHBOARD_DATA_PREFIX = "/dashboard/api/";

export const DASHBOARD_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

export const DASHBOARD_HEADERS: Record<string, string> = {
  "content-security-policy": DASHBOARD_CSP,
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

export function isDashboardUrl(url: string): boolean {
  const path = url.split("?")[0] ?? "";
  return path === DASHBOARD_PATH || path.startsWith(`${DASHBOARD_PATH}/`);
}

/** Registered before admission, so that its refusals carry the headers too. */
export function registerDashboardHeaders(app: FastifyInstance): void {
  app.addHook("onRequest", async (request, reply) => {
    if (isDashboardUrl(request.url)) void reply.headers(DASHBOARD_HEADERS);
  });
}
