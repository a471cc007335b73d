// A listener of its own for Prometheus (CALIOPEN_METRICS), for nodes without the HTTP API or to keep
// scrapes off the public API's port. It answers GET /metrics without authentication, as Prometheus
// expects: the figures carry no user data (see metrics.ts), and it should listen on a private address.
import { createServer, type Server } from "node:http";
import type { RuntimeMetrics } from "./metrics.ts";
import { StartupError } from "./startup-error.ts";

export const METRICS_PATH = "/metrics";

export interface RunningMetricsServer {
  url: string;
  close(): Promise<void>;
}

export async function startMetricsServer(metrics: RuntimeMetrics, listen: { host: string; port: number }): Promise<RunningMetricsServer> {
  // Short timeouts: a scrape is one small request, and a slow client must not hold sockets.
  const server: Server = createServer({ headersTimeout: 5_000, requestTimeout: 10_000 }, (request, response) => {
    const path = (request.url ?? "").split("?")[0];
    if (path !== METRICS_PATH) {
      response.writeHead(404, { "content-type": "text/plain" }).end(`only ${METRICS_PATH} is served here\n`);
      return;
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("GET only\n");
      return;
    }
    metrics.scrape().then(
      ({ contentType, text }) => response.writeHead(200, { "content-type": contentType }).end(request.method === "HEAD" ? undefined : text),
      (err: Error) => response.writeHead(500, { "content-type": "text/plain" }).end(`metrics could not be collected: ${err.message}\n`),
    );
  });
  server.keepAliveTimeout = 5_000;
  server.setTimeout(30_000);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(listen.port, listen.host, () => {
      server.off("error", reject);
      resolve();
    });
  }).catch((err: Error) => {
    throw new StartupError(`the metrics listener (CALIOPEN_METRICS) cannot listen on ${listen.host}:${listen.port}: ${err.message}`);
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : listen.port;
  const host = listen.host.includes(":") ? `[${listen.host}]` : listen.host;
  return {
    url: `http://${host}:${port}${METRICS_PATH}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
