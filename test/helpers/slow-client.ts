// A raw TCP client that sends a request a byte at a time (slowloris), or sends nothing, and records
// what the server answers and whether it closed the connection.
import { connect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { sleep } from "../../scripts/local-servers/wait.ts";

export interface Trickle {
  /** Everything the server sent. */
  received: string;
  /** Whether the server closed the connection before the client had sent everything. */
  closedEarly: boolean;
  /** Bytes the client had sent when the connection closed (or when it finished). */
  sent: number;
}

/**
 * Sends `prefix` at once, then `text` one byte every `everyMs` (each byte in time for any idle
 * timeout), stopping when the server closes the connection. `tls`: the CA to trust, for an HTTPS port.
 */
export async function trickle(port: number, text: string, everyMs: number, options: { prefix?: string; tls?: { ca: string } } = {}): Promise<Trickle> {
  const socket = await open(port, options.tls);
  let received = "";
  let closed = false;
  socket.on("data", (chunk: Buffer) => (received += chunk.toString("utf8")));
  socket.on("error", () => undefined);
  socket.on("close", () => (closed = true));
  if (options.prefix !== undefined) socket.write(options.prefix);
  let sent = 0;
  for (; sent < text.length && !closed; sent++) {
    socket.write(text[sent] as string);
    await sleep(everyMs);
  }
  const closedEarly = closed;
  socket.destroy();
  return { received, closedEarly, sent };
}

/** Connects and sends nothing; resolves once the server closes the connection, or after `giveUpMs` (closed: false). */
export async function silent(port: number, giveUpMs: number, tls?: { ca: string }): Promise<{ closed: boolean; received: string }> {
  const socket = await open(port, tls);
  let received = "";
  socket.on("data", (chunk: Buffer) => (received += chunk.toString("utf8")));
  socket.on("error", () => undefined);
  const closed = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), giveUpMs);
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  socket.destroy();
  return { closed, received };
}

function open(port: number, tls?: { ca: string }): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket =
      tls === undefined
        ? connect({ host: "127.0.0.1", port }, () => resolve(socket))
        : tlsConnect({ host: "127.0.0.1", port, ca: tls.ca }, () => resolve(socket));
    socket.once("error", reject);
  });
}
