// The live-accounts scenario's mail source: LOGIN, APPEND, LOGOUT on a fresh IMAP connection, spoken by
// hand so that it can leave from its own loopback address (APPENDER_ADDRESS). Dovecot's log then tells its
// logins from the nodes' (`rip=`), and the reconnect storm it counts is the nodes' alone.
import { connect, type Socket } from "node:net";
import { epochNow } from "./stats.ts";

/** Any 127/8 address reaches a server listening on 127.0.0.1, and is seen as the client's address. */
export const APPENDER_ADDRESS = "127.0.0.2";
const TIMEOUT_MS = 15_000;

const quoted = (value: string) => `"${value.replace(/["\\]/g, (char) => `\\${char}`)}"`;

/** Lines as they arrive; `next(tag)` waits for the tagged completion and fails on NO/BAD. */
function lineReader(socket: Socket) {
  let buffer = "";
  let waiting: { prefix: string; resolve: (line: string) => void; reject: (err: Error) => void } | null = null;
  const check = () => {
    for (;;) {
      const end = buffer.indexOf("\r\n");
      if (end < 0 || waiting === null) return;
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      if (!line.startsWith(waiting.prefix)) continue;
      const current = waiting;
      waiting = null;
      if (/^\S+ (NO|BAD)\b/.test(line) || line.startsWith("* BYE")) current.reject(new Error(line));
      else current.resolve(line);
    }
  };
  socket.on("data", (chunk: Buffer) => {
    buffer += chunk.toString("latin1");
    check();
  });
  const fail = (err: Error) => {
    const current = waiting;
    waiting = null;
    current?.reject(err);
  };
  socket.on("error", fail);
  socket.on("close", () => fail(new Error("the IMAP connection closed")));
  return (prefix: string) =>
    new Promise<string>((resolve, reject) => {
      waiting = { prefix, resolve, reject };
      check();
    });
}

/**
 * APPENDs `raw` (CRLF line ends) to `user`'s INBOX and returns the epoch ms at which the APPEND command
 * was sent (after the login): the moment the mail reaches the provider.
 */
export async function appendOnce(port: number, user: string, password: string, raw: Buffer): Promise<number> {
  const socket = connect({ host: "127.0.0.1", port, localAddress: APPENDER_ADDRESS });
  socket.setTimeout(TIMEOUT_MS, () => socket.destroy(new Error(`no answer from the IMAP server within ${TIMEOUT_MS} ms`)));
  const next = lineReader(socket);
  try {
    await next("* OK");
    socket.write(`a1 LOGIN ${quoted(user)} ${quoted(password)}\r\n`);
    await next("a1 ");
    const sentAt = epochNow();
    // LITERAL+: the message follows its size at once, no continuation to wait for.
    socket.write(`a2 APPEND INBOX {${raw.length}+}\r\n`);
    socket.write(raw);
    socket.write("\r\n");
    await next("a2 ");
    socket.write("a3 LOGOUT\r\n");
    await next("a3 ").catch(() => undefined);
    return sentAt;
  } finally {
    socket.destroy();
  }
}
