// Which client address a request comes from. Behind a reverse proxy every request comes from the
// proxy: X-Forwarded-For names the client, but anyone can send that header, so it is believed only
// from the proxies listed in CALIOPEN_HTTP_TRUST_PROXY (Fastify's trustProxy, through proxy-addr).
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";

/** Fastify's `trustProxy` for these proxies: false when none is trusted. */
export function trustProxyOption(trustedProxies: string[]): false | string[] {
  return trustedProxies.length === 0 ? false : trustedProxies;
}

/**
 * When no proxy is trusted but requests carry X-Forwarded-For, the node probably runs behind a proxy
 * that is not configured: every client then shares the proxy's per-address budget. Said once.
 */
export function warnOfUntrustedForwarding(app: FastifyInstance, trustedProxies: string[], logger: Logger): void {
  if (trustedProxies.length > 0) return;
  let warned = false;
  app.addHook("onRequest", async (request) => {
    if (warned || request.headers["x-forwarded-for"] === undefined) return;
    warned = true;
    logger.warn(
      { from: request.ip },
      "a request carries X-Forwarded-For but CALIOPEN_HTTP_TRUST_PROXY is off: the header is ignored, and if this node is behind a reverse proxy every client shares the proxy's per-address rate limit",
    );
  });
}
