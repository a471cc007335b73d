// A small hostile IMAP server on a free loopback port (plain TCP), speaking just enough IMAP4rev1 for a
// sync: greeting, CAPABILITY, LOGIN (any password), EXAMINE/SELECT of a one-message INBOX, UID
// SEARCH, UID FETCH, LIST, NOOP, IDLE, LOGOUT. How it answers the fetches is its mode:
//  - `huge-literal`: a body is announced as a literal of `literal` bytes (2 GiB, say), and then bytes
//    are sent as fast as the socket takes them, until the client hangs up;
//  - `lying-size`: RFC822.SIZE says `announced` bytes, the body comes as a literal of `literal` bytes,
//    sent as fast as the socket takes them;
//  - `endless-pieces`: RFC822.SIZE says `announced` bytes, and every partial fetch
//    (`BODY.PEEK[]<start.length>`) gets a full piece, however far past that size it starts;
//  - `trickle`: the answer to `at` ("login": LOGIN; "fetch": the first UID FETCH) begins, then goes on
//    one byte every `everyMs`, for ever, without ever ending its line;
//  - `slow-rows`: the INBOX holds `messages` messages, and the answer to a UID FETCH comes one message
//    every `everyMs`: always progress, never the end of a sync;
//  - `vanishing`: the INBOX holds `messages` small messages, served honestly, but every UID SEARCH after
//    the first names none of them (an answer that lost UIDs, while EXISTS still counts them all).
// `stats` tells what the server saw and sent, for the tests to check that the attack took place.
import { createServer, type Socket } from "node:net";

export type HostileMode =
  | { kind: "huge-literal"; literal: number }
  | { kind: "lying-size"; announced: number; literal: number }
  | { kind: "endless-pieces"; announced: number }
  | { kind: "trickle"; at: "login" | "fetch"; everyMs: number }
  | { kind: "slow-rows"; messages: number; everyMs: number }
  | { kind: "vanishing"; messages: number };

export interface HostileImapStats {
  connections: number;
  /** Every command line received, without its tag. */
  commands: string[];
  /** Body bytes written (literals, pieces, trickled bytes). */
  bytesSent: number;
  /** Connections open now. */
  open: number;
  /** UID SEARCH commands answered, all connections together. */
  searches: number;
}

export interface HostileImap {
  /** `host:port`, as an identity's `infos.inserver`. */
  server: string;
  stats: HostileImapStats;
  stop(): Promise<void>;
}

const UIDVALIDITY = 4242;
const FLOOD_CHUNK = Buffer.alloc(1024 * 1024, "a");

/**
 * Where hostile servers listen: a loopback address of their own (all of 127/8 is loopback on Linux), so
 * that a test can admit them, with `+cleartext`, as a network apart from the relay's and NATS's host.
 */
export const HOSTILE_HOST = "127.0.0.3";

export async function startHostileImap(mode: HostileMode): Promise<HostileImap> {
  const sockets = new Set<Socket>();
  const stats: HostileImapStats = { connections: 0, commands: [], bytesSent: 0, open: 0, searches: 0 };
  const server = createServer((socket) => {
    sockets.add(socket);
    stats.connections += 1;
    stats.open += 1;
    socket.on("error", () => undefined);
    socket.on("close", () => {
      sockets.delete(socket);
      stats.open -= 1;
    });
    serve(socket, mode, stats);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, HOSTILE_HOST, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  return {
    server: `${HOSTILE_HOST}:${port}`,
    stats,
    stop: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

function serve(socket: Socket, mode: HostileMode, stats: HostileImapStats): void {
  let buffered = "";
  let idleTag: string | null = null;
  let busy = false;
  const send = (text: string) => {
    if (!socket.destroyed) socket.write(text);
  };
  const closed = () => socket.destroyed || socket.writableEnded;

  /** Writes `total` bytes as fast as the socket takes them, stopping when the client hangs up. */
  const flood = async (total: number) => {
    let left = total;
    while (left > 0 && !closed()) {
      const piece = left >= FLOOD_CHUNK.length ? FLOOD_CHUNK : FLOOD_CHUNK.subarray(0, left);
      left -= piece.length;
      stats.bytesSent += piece.length;
      if (!socket.write(piece)) await drained(socket);
    }
  };
  /** `start`, then one byte of `filler` every `everyMs`, for ever (until the client hangs up). */
  const trickle = (start: string, filler: string, everyMs: number) => {
    send(start);
    let at = 0;
    const timer = setInterval(() => {
      if (closed()) return clearInterval(timer);
      stats.bytesSent += 1;
      socket.write(filler[at % filler.length] ?? "x");
      at += 1;
    }, everyMs);
    socket.once("close", () => clearInterval(timer));
  };

  /** Messages the INBOX holds. */
  const held = mode.kind === "slow-rows" || mode.kind === "vanishing" ? mode.messages : 1;
  const handle = async (tag: string, command: string, rest: string) => {
    switch (command) {
      case "CAPABILITY":
        send(`* CAPABILITY IMAP4rev1 IDLE\r\n${tag} OK done\r\n`);
        return;
      case "LOGIN":
        if (mode.kind === "trickle" && mode.at === "login") return trickle(`${tag} OK [CAPABILITY IMAP4rev1 IDLE] welcome`, " ...eventually", mode.everyMs);
        send(`${tag} OK [CAPABILITY IMAP4rev1 IDLE] logged in\r\n`);
        return;
      case "SELECT":
      case "EXAMINE":
        send(
          `* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n* OK [PERMANENTFLAGS ()] none\r\n* ${held} EXISTS\r\n* 0 RECENT\r\n` +
            `* OK [UIDVALIDITY ${UIDVALIDITY}] ok\r\n* OK [UIDNEXT ${held + 1}] ok\r\n${tag} OK [${command === "EXAMINE" ? "READ-ONLY" : "READ-WRITE"}] done\r\n`,
        );
        return;
      case "LIST":
        send(`${rest.endsWith('""') ? '* LIST (\\Noselect) "/" ""' : '* LIST (\\HasNoChildren) "/" INBOX'}\r\n${tag} OK done\r\n`);
        return;
      case "NOOP":
      case "CHECK":
        send(`${tag} OK done\r\n`);
        return;
      case "LOGOUT":
        send(`* BYE bye\r\n${tag} OK done\r\n`);
        socket.end();
        return;
      case "IDLE":
        idleTag = tag;
        send("+ idling\r\n");
        return;
      case "UID":
        return uid(tag, rest);
      default:
        send(`${tag} BAD unknown command\r\n`);
    }
  };

  const uid = async (tag: string, rest: string) => {
    const [sub = "", ...args] = rest.split(" ");
    const query = args.join(" ").toUpperCase();
    if (sub.toUpperCase() === "SEARCH") {
      stats.searches += 1;
      const count = mode.kind === "vanishing" && stats.searches > 1 ? 0 : held;
      send(`* SEARCH ${Array.from({ length: count }, (_, n) => n + 1).join(" ")}\r\n${tag} OK done\r\n`);
      return;
    }
    if (sub.toUpperCase() !== "FETCH") return send(`${tag} BAD unknown UID command\r\n`);
    if (mode.kind === "vanishing") {
      const wanted = /BODY(\.PEEK)?\[\]/.test(query);
      for (const n of uidSet(args[0] ?? "").filter((uid) => uid <= mode.messages)) {
        const message = `From: someone@hostile.test\r\nSubject: vanishing ${n}\r\nMessage-ID: <vanishing-${n}@hostile.test>\r\n\r\nbody ${n}\r\n`;
        send(
          wanted
            ? `* ${n} FETCH (UID ${n} BODY[] {${message.length}}\r\n${message})\r\n`
            : `* ${n} FETCH (UID ${n} FLAGS () RFC822.SIZE ${message.length})\r\n`,
        );
      }
      send(`${tag} OK done\r\n`);
      return;
    }
    if (mode.kind === "slow-rows") {
      for (const n of uidSet(args[0] ?? "")) {
        await new Promise((resolve) => setTimeout(resolve, mode.everyMs));
        if (closed()) return;
        send(`* ${n} FETCH (UID ${n} FLAGS () RFC822.SIZE 100)\r\n`);
      }
      send(`${tag} OK done\r\n`);
      return;
    }
    if (mode.kind === "trickle" && mode.at === "fetch") return trickle("* 1 FETCH (UID 1 FLAGS (", "\\Seen ", mode.everyMs);
    const wantsBody = /BODY(\.PEEK)?\[\]|BINARY(\.PEEK)?\[\]/.test(query);
    const partial = /\[\]<(\d+)\.(\d+)>/.exec(query);
    const announced = mode.kind === "huge-literal" ? 1000 : mode.kind === "trickle" ? 100 : mode.announced;
    if (!wantsBody) {
      send(`* 1 FETCH (UID 1 FLAGS () RFC822.SIZE ${announced})\r\n${tag} OK done\r\n`);
      return;
    }
    if (mode.kind === "endless-pieces" && partial !== null) {
      const [start, length] = [Number(partial[1]), Number(partial[2])];
      send(`* 1 FETCH (UID 1 RFC822.SIZE ${announced} BODY[]<${start}> {${length}}\r\n`);
      await flood(length);
      send(`)\r\n${tag} OK done\r\n`);
      return;
    }
    const literal = mode.kind === "huge-literal" || mode.kind === "lying-size" ? mode.literal : announced;
    send(`* 1 FETCH (UID 1 BODY[] {${literal}}\r\n`);
    await flood(literal);
    send(`)\r\n${tag} OK done\r\n`);
  };

  socket.setEncoding("latin1");
  send("* OK [CAPABILITY IMAP4rev1 IDLE] hostile IMAP ready\r\n");
  socket.on("data", (chunk: string) => {
    buffered += chunk;
    void drain();
  });
  const drain = async () => {
    if (busy) return;
    busy = true;
    try {
      for (let end = buffered.indexOf("\r\n"); end >= 0; end = buffered.indexOf("\r\n")) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        if (idleTag !== null) {
          if (line.trim().toUpperCase() === "DONE") send(`${idleTag} OK idle done\r\n`);
          idleTag = null;
          continue;
        }
        const [tag = "*", command = "", ...rest] = line.split(" ");
        stats.commands.push(`${command.toUpperCase()} ${rest.join(" ")}`.trim());
        await handle(tag, command.toUpperCase(), rest.join(" "));
      }
    } finally {
      busy = false;
    }
  };
}

/** The UIDs of a sequence set such as `1,3:5`. */
function uidSet(set: string): number[] {
  return set.split(",").flatMap((part) => {
    const [from = 0, to = from] = part.split(":").map(Number);
    return Array.from({ length: Math.max(0, to - from + 1) }, (_, n) => from + n);
  });
}

/** Resolves when the socket takes more, or is gone. */
function drained(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      socket.off("drain", done);
      socket.off("close", done);
      resolve();
    };
    socket.on("drain", done);
    socket.on("close", done);
  });
}
