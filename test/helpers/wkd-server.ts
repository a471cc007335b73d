// Web servers for Web Key Directory tests, which cannot own real domains: one loopback HTTP server
// stands for many hosts. A request for `/<host>/<path>` is served from `rootFor(host)/<path>`, so
// `baseUrl` (KeySources.wkd.baseUrl) maps `openpgpkey.example.org` and `example.org` to distinct
// document roots. `delayMs` holds each answer back a while, and `mostAtOnce` tells how many requests it
// had at the same time. Also a server that accepts connections and never answers, for timeouts.
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createTcpServer, type Socket } from "node:net";
import { readFile } from "node:fs/promises";
import { join, normalize } from "node:path";

export interface TestWebServer {
  origin: string;
  /** For `KeySources.wkd.baseUrl`: the origin standing for `host`. */
  baseUrl: (host: string) => string;
  /** Every request: the host it stood for, the path below it and the query. */
  requests: { host: string; path: string; query: string }[];
  /** The most requests it was answering at the same time. */
  mostAtOnce: number;
  stop(): Promise<void>;
}

export async function startWebServer(rootFor: (host: string) => string | null, options: { delayMs?: number } = {}): Promise<TestWebServer> {
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
    requests.push({ host, path, query: url.search });
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
  const origin = await listen(server);
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

function listen(server: Server | ReturnType<typeof createTcpServer>): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      resolve(`http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}`);
    });
  });
}
