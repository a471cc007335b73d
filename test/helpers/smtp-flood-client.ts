// A hostile SMTP peer (run as a child process by smtp-flood.ts, with its own file descriptor limit):
// opens many connections from the given loopback addresses and says nothing. Prints one JSON line once
// every connection got its first line (greeting or refusal) or was closed, then one per "report" line
// read on stdin; closes everything when stdin ends.
//
// At most PENDING connections wait for their first line at a time: a burst larger than the server's
// accept backlog (511) is dropped by the kernel after the handshake, leaving client sockets that look
// open but that the server never saw (they would never be answered, and they tell nothing about it).
import { connect, type Socket } from "node:net";
import { createInterface } from "node:readline";

interface Spec {
  port: number;
  sources: string[];
  perSource: number;
}

interface Connection {
  socket: Socket;
  source: string;
  lines: string[];
  closed: boolean;
  error: string | null;
}

const PENDING = 200;
const spec = JSON.parse(process.argv[2] ?? "{}") as Spec;
const queue = spec.sources.flatMap((source) => Array.from({ length: spec.perSource }, () => source));
const total = queue.length;
let pending = 0;
const connections: Connection[] = [];
let settled = 0;
let announced = false;

const isSettled = (c: Connection) => c.lines.length > 0 || c.closed;

function settle(connection: Connection, wasSettled: boolean): void {
  if (wasSettled || !isSettled(connection)) return;
  settled++;
  pending--;
  openMore();
  if (!announced && settled === total) {
    announced = true;
    print("settled");
  }
}

function print(type: string): void {
  const firstLines: Record<string, number> = {};
  const laterLines: Record<string, number> = {};
  let open = 0;
  let held = 0;
  const errors: Record<string, number> = {};
  for (const c of connections) {
    const first = c.lines[0] ?? (c.closed ? "(closed without a reply)" : "(nothing yet)");
    firstLines[first] = (firstLines[first] ?? 0) + 1;
    for (const line of c.lines.slice(1)) laterLines[line] = (laterLines[line] ?? 0) + 1;
    if (!c.closed) open++;
    // Greeted, and neither closed nor told it is being closed (a 421 ends the session at once).
    if (!c.closed && c.lines[0]?.startsWith("220 ") && !c.lines.some((line) => line.startsWith("421 "))) held++;
    if (c.error !== null) errors[c.error] = (errors[c.error] ?? 0) + 1;
  }
  process.stdout.write(`${JSON.stringify({ type, total: connections.length, open, held, firstLines, laterLines, errors })}\n`);
}

function openMore(): void {
  for (let source = queue.shift(); source !== undefined; source = pending < PENDING ? queue.shift() : undefined) {
    pending++;
    open(source);
  }
}

function open(source: string): void {
  const socket = connect({ host: "127.0.0.1", port: spec.port, localAddress: source });
  const connection: Connection = { socket, source, lines: [], closed: false, error: null };
  connections.push(connection);
  let buffer = "";
  socket.on("data", (chunk: Buffer) => {
    const was = isSettled(connection);
    buffer += chunk.toString("latin1");
    let end = buffer.indexOf("\r\n");
    while (end !== -1) {
      connection.lines.push(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      end = buffer.indexOf("\r\n");
    }
    settle(connection, was);
  });
  socket.on("error", (err: NodeJS.ErrnoException) => (connection.error = err.code ?? err.message));
  socket.on("close", () => {
    const was = isSettled(connection);
    connection.closed = true;
    settle(connection, was);
  });
}

openMore();

const input = createInterface({ input: process.stdin });
input.on("line", (line) => {
  if (line.trim() === "report") print("report");
});
input.on("close", () => {
  for (const c of connections) c.socket.destroy();
  process.exit(0);
});
