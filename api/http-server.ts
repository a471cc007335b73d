// The Node server under the API: HTTP or HTTPS, with every timeout set. Node's own defaults let a
// client take 60 s over its headers and for ever over its body, and check both only every 30 s.
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { HttpSettings, Timeouts } from "./http-settings.ts";
import { refusePlainHttp } from "./plain-http-refusal.ts";

type Handler = (request: IncomingMessage, response: ServerResponse) => void;

export function createApiServer(settings: Pick<HttpSettings, "timeouts" | "tls">, handler: Handler): Server {
  const { timeouts, tls } = settings;
  const options = {
    headersTimeout: timeouts.headersMs,
    requestTimeout: timeouts.requestMs,
    connectionsCheckingInterval: checkingInterval(timeouts),
  };
  let server: Server;
  if (tls === null) server = createHttpServer(options, handler);
  else {
    const https = createHttpsServer({ ...options, cert: tls.cert, key: tls.key, handshakeTimeout: timeouts.headersMs }, handler);
    refusePlainHttp(https, timeouts.headersMs);
    server = https;
  }
  server.keepAliveTimeout = timeouts.keepAliveMs;
  server.setTimeout(timeouts.idleMs);
  return server;
}

/** Node finds requests over their time on a timer: a tenth of the shorter timeout, between 100 ms and 1 s. */
function checkingInterval(timeouts: Timeouts): number {
  return Math.min(1_000, Math.max(100, Math.floor(Math.min(timeouts.headersMs, timeouts.requestMs) / 10)));
}
