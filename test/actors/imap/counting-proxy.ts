// A plain TCP forwarder on a free loopback port in front of a real server (TLS and STARTTLS pass through
// untouched): it counts the connections clients make through it, how many are open at once, when each
// was accepted, and can cut them all at once (a server restarting, a network dropping every session) or
// refuse new ones for a while (a server away).
import { connect, createServer, type Socket } from "node:net";

export interface CountingProxy {
  /** `127.0.0.1:<port>`, as an identity's server. */
  server: string;
  /** Connections open now. */
  open(): number;
  /** Connections accepted since the start (or the last reset()). */
  total(): number;
  /** The most connections open at the same time since the start (or the last reset()). */
  maxOpen(): number;
  /** When each connection was accepted (Date.now()), in order. */
  acceptedAt(): number[];
  reset(): void;
  /** Cuts every open connection, both ways. */
  cutAll(): void;
  /** While refusing, a new connection is closed at once (the server is away); cuts the open ones too. */
  refuse(refusing: boolean): void;
  stop(): Promise<void>;
}

export async function startCountingProxy(target: { host: string; port: number }): Promise<CountingProxy> {
  const open = new Set<Socket>();
  let accepted: number[] = [];
  let maxOpen = 0;
  const sockets = new Set<Socket>();
  let refusing = false;
  const server = createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    accepted.push(Date.now());
    open.add(client);
    maxOpen = Math.max(maxOpen, open.size);
    const upstream = connect(target.port, target.host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("error", () => undefined);
      socket.on("close", () => {
        sockets.delete(socket);
        open.delete(client);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    server: `127.0.0.1:${port}`,
    open: () => open.size,
    total: () => accepted.length,
    maxOpen: () => maxOpen,
    acceptedAt: () => [...accepted],
    reset: () => {
      accepted = [];
      maxOpen = open.size;
    },
    cutAll: () => {
      for (const socket of sockets) socket.destroy();
    },
    refuse: (refuse) => {
      refusing = refuse;
      if (refuse) for (const socket of sockets) socket.destroy();
    },
    stop: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
