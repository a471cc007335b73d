// On the HTTPS port, a client that speaks plain HTTP gets a clear 400 in the API's error body instead
// of a connection dropped mid-handshake. A TLS connection opens with a handshake record (byte 0x16);
// anything else is answered in plain text and closed.
import type { Server as HttpsServer } from "node:https";
import type { Socket } from "node:net";
import { errorBody } from "./http-error.ts";

const TLS_HANDSHAKE = 0x16;

/** `waitMs`: how long a new connection may stay silent before its first byte. */
export function refusePlainHttp(server: HttpsServer, waitMs: number): void {
  // A tls.Server's own 'connection' listener starts the handshake; it runs only once the first byte is seen.
  const startTls = server.listeners("connection");
  if (startTls.length !== 1) throw new Error(`expected one TLS connection listener, found ${startTls.length}`);
  server.removeAllListeners("connection");
  server.on("connection", (socket: Socket) => {
    const silent = setTimeout(() => socket.destroy(), waitMs);
    const dropped = () => socket.destroy();
    socket.on("error", dropped);
    const onReadable = () => {
      const first: Buffer | null = socket.read(1);
      if (first === null) return;
      clearTimeout(silent);
      socket.off("readable", onReadable);
      socket.off("error", dropped);
      // Back where it came from: the TLS socket reads what is buffered before reading on.
      socket.unshift(first);
      if (first[0] === TLS_HANDSHAKE) for (const listener of startTls) listener.call(server, socket);
      else answerPlain(socket, waitMs);
    };
    socket.on("readable", onReadable);
    socket.once("close", () => clearTimeout(silent));
  });
}

function answerPlain(socket: Socket, waitMs: number): void {
  const body = JSON.stringify(errorBody(400, "this port speaks HTTPS: use an https:// URL"));
  socket.on("error", () => socket.destroy());
  socket.setTimeout(waitMs, () => socket.destroy());
  socket.end(
    `HTTP/1.1 400 Bad Request\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
  // The request is never read: once the answer is out, the connection goes.
  socket.resume();
}
