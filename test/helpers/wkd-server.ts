// Web servers for Web Key Directory tests, which cannot own real domains: one loopback HTTP server
// stands for many hosts. A request for `/<host>/<path>` is served from `rootFor(host)/<path>`, so
// `baseUrl` (KeySources.wkd.baseUrl) maps `openpgpkey.example.org` and `example.org` to distinct
// document roots. It may also answer with redirects, listen on another loopback address (127.0.0.2) or
// a given port, and hold each answer back a while (`delayMs`; `mostAtOnce` tells how many requests it
// had at the same time). Also a server that accepts connections and never answers, for timeouts.

import { readFile } from "node:fs/promises";
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createTcpServer, type Socket } from "node:net";
import { join, normalize } from "node:path";

export interface TestWebServer {
  origin: string;
  /** For `KeySources.wkd.baseUrl`: the origin standing for `host`. */
  baseUrl: (host: string) => string;
  /** Every request: the host it stood for, the path below it and the query, and its Host header. */
  requests: { host: string; path: string; query: string; hostHeader: string }[];
  /** The most requests it was answering at the same time. */
  mostAtOnce: number;
  stop(): Promise<void>;
}

export interface WebServerOptions {
  /** The loopback address to listen on (127.0.0.1 by default) and the port (any free one by default). */
  listen?: { host?: string; port?: number };
  /** Answers `302 Location: <what it returns>` instead of serving a file, where it returns a URL. */
  redirect?: (host: string, path: string) => string | null;
  /** Holds each answer back this long. */
  delayMs?: number;
}

export async function startWebServer(rootFor: (host: string) => string | null, options: WebServerOptions = {}): Promise<TestWebServer> {
  const requests: TestWebServer["requests"] = [];
  let atOnce = 0;
  let mostAtOnce = 0;
  const server = createHttpServer(async (request, response) => {
    atOnce += 1;
    mostAtOnce = Math.max(mostAtOnce, atOnce);
    response.once("close", () => (atOnce -= 1));
    if (options.delayMs !== undefined) await new Promise((resolve) => setTimeout(resolve, options.delayMs));
    const url = new URL(request.url ?? "/", "http://x");
    const [, host = "", ...rest] = url.pathname.split("/");
    const path = `/${rest.join("/")}`;
    requests.push({ host, path, query: url.search, hostHeader: request.headers.host ?? "" });
    const location = options.redirect?.(host, path) ?? null;
    if (location !== null) return void response.writeHead(302, { location }).end();
    const root = rootFor(host);
    const file = normalize(path);
    if (root === null || file.includes("..")) return void response.writeHead(404).end("not found");
    try {
      const bytes = await readFile(join(root, file));
      response.writeHead(200, { "content-type": "application/octet-stream", "content-length": bytes.length }).end(bytes);
    } catch {
      response.writeHead(404).end("not found");
    }
  });
  const origin = await listen(server, options.listen);
  return {
    origin,
    baseUrl: (host) => `${origin}/${host}`,
    requests,
    get mostAtOnce() {
      return mostAtOnce;
    },
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** A server that takes connections and never answers: requests to it time out. */
export async function startSilentServer(): Promise<{ origin: string; stop(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => undefined);
  });
  const origin = await listen(server);
  return {
    origin,
    stop: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

function listen(server: Server | ReturnType<typeof createTcpServer>, at: { host?: string; port?: number } = {}): Promise<string> {
  const host = at.host ?? "127.0.0.1";
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(at.port ?? 0, host, () => {
      const address = server.address();
      resolve(`http://${host}:${typeof address === "object" && address !== null ? address.port : 0}`);
    });
  });
}
