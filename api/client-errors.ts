// Errors found by Node's HTTP parser before any route sees the request (headers or body too slow,
// headers too large, malformed HTTP): answered in the API's error body, then the connection is closed.
import type { Socket } from "node:net";
import { errorBody } from "./http-error.ts";
import type { Timeouts } from "./http-settings.ts";

export function clientErrorHandler(timeouts: Timeouts): (err: NodeJS.ErrnoException, socket: Socket) => void {
  return (err, socket) => {
    // A reset connection has nobody to answer.
    if (err.code === "ECONNRESET" || socket.destroyed) return;
    const [status, message] =
      err.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? [408, `the request did not arrive in time (headers within ${timeouts.headersMs / 1000} s, the whole request within ${timeouts.requestMs / 1000} s)`]
        : err.code === "HPE_HEADER_OVERFLOW"
          ? [431, "the request's headers are too large"]
          : [400, "malformed HTTP request"];
    const body = JSON.stringify(errorBody(status, message));
    if (socket.writable) {
      socket.write(
        `HTTP/1.1 ${status} ${REASONS[status]}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy();
  };
}

const REASONS: Record<number, string> = { 400: "Bad Request", 408: "Request Timeout", 431: "Request Header Fields Too Large" };
