// A man in the middle that strips STARTTLS, on a free loopback port in front of a real IMAP or SMTP
// server: it hides STARTTLS from what the server announces (greeting, CAPABILITY, EHLO), answers a
// client's STARTTLS itself with a refusal the server never sees, and forwards everything else, keeping
// what the client sent (where a password would show).
import { connect, createServer, type Socket } from "node:net";

export interface StarttlsStripper {
  port: number;
  /** `127.0.0.1:<port>`, as an identity's server. */
  server: string;
  /** Everything clients sent through it, as text. */
  intercepted(): string;
  /** How many connections clients made to it. */
  connections(): number;
  stop(): Promise<void>;
}

export async function startStarttlsStripper(protocol: "imap" | "smtp", target: { host: string; port: number }): Promise<StarttlsStripper> {
  let seen = "";
  let connections = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    connections++;
    const upstream = connect(target.port, target.host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("error", () => undefined);
      socket.on("close", () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    byLine(upstream, (line) => client.write(line.replace(/STARTTLS/gi, "XXXXXXXX"), "latin1"));
    byLine(client, (line) => {
      seen += line;
      const imap = /^(\S+) STARTTLS\r?\n$/i.exec(line);
      if (protocol === "imap" && imap !== null) client.write(`${imap[1]} BAD Unknown command\r\n`);
      else if (protocol === "smtp" && /^STARTTLS\r?\n$/i.test(line)) client.write("502 5.5.2 Error: command not recognized\r\n");
      else upstream.write(line, "latin1");
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  return {
    port,
    server: `127.0.0.1:${port}`,
    intercepted: () => seen,
    connections: () => connections,
    stop: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Calls `onLine` with each complete line (its end included); these protocols are line-based until TLS. */
function byLine(socket: Socket, onLine: (line: string) => void): void {
  let pending = "";
  socket.setEncoding("latin1");
  socket.on("data", (chunk: string) => {
    pending += chunk;
    for (let end = pending.indexOf("\n"); end !== -1; end = pending.indexOf("\n")) {
      onLine(pending.slice(0, end + 1));
      pending = pending.slice(end + 1);
    }
  });
}
