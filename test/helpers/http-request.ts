// One HTTP(S) request with what fetch cannot choose: the local address it comes from (any 127.x.y.z
// on loopback, to play several clients), a CA to trust, any headers. Answers status, headers and the
// body, parsed when it is JSON.
import { request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { request as httpsRequest } from "node:https";

export interface RawAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  // biome-ignore lint/suspicious/noExplicitAny: parsed JSON of any shape; each test asserts the fields it expects
  body: any;
}

export interface RawRequest {
  method?: string;
  token?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Send the body in chunks, without Content-Length. */
  chunked?: boolean;
  localAddress?: string;
  /** PEM of the CA to trust, for https:// URLs. */
  ca?: string;
}

export function rawRequest(url: string, options: RawRequest = {}): Promise<RawAnswer> {
  const target = new URL(url);
  const headers: Record<string, string> = { ...options.headers };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) {
    headers["content-type"] ??= "application/json";
    if (options.chunked !== true) headers["content-length"] = String(Buffer.byteLength(options.body));
  }
  const send = target.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(
      target,
      {
        method: options.method ?? "GET",
        headers,
        agent: false,
        ...(options.localAddress !== undefined && { localAddress: options.localAddress }),
        ...(options.ca !== undefined && { ca: options.ca }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("error", reject);
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let body: unknown = text;
          if (/json/.test(res.headers["content-type"] ?? "") && text !== "") body = JSON.parse(text);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
        });
      },
    );
    req.on("error", reject);
    if (options.body === undefined) req.end();
    else if (options.chunked === true) {
      // In 16 KiB pieces, as a client streaming an upload would.
      const body = Buffer.from(options.body);
      for (let offset = 0; offset < body.length; offset += 16_384) req.write(body.subarray(offset, offset + 16_384));
      req.end();
    } else req.end(options.body);
  });
}
