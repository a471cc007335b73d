// The HTTP requests of key discovery and publishing: a deadline for the whole exchange (body included),
// a cap on the size of what is read (a key server may hold keys of many megabytes, e.g. flooded with
// signatures), and errors that say what failed in words an operator can act on.

/** What is read of one answer at most; more is a failure, not a truncated key. */
export const MAX_ANSWER_BYTES = 4 * 1024 * 1024;

export interface HttpAnswer {
  status: number;
  bytes: Uint8Array;
}

export class HttpFailure extends Error {
  override readonly name = "HttpFailure";
  constructor(
    message: string,
    /** DNS could not find the host (the WKD's advanced method treats this as "no such sub-domain"). */
    readonly hostNotFound = false,
  ) {
    super(message);
  }
}

export async function httpRequest(
  url: string,
  options: { timeoutMs: number; method?: "GET" | "POST"; body?: string; headers?: Record<string, string>; maxBytes?: number },
): Promise<HttpAnswer> {
  const maxBytes = options.maxBytes ?? MAX_ANSWER_BYTES;
  const signal = AbortSignal.timeout(options.timeoutMs);
  try {
    const response = await fetch(url, { method: options.method ?? "GET", body: options.body, headers: options.headers, signal, redirect: "follow" });
    const chunks: Uint8Array[] = [];
    let size = 0;
    if (response.body !== null) {
      for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
        size += chunk.length;
        if (size > maxBytes) {
          await response.body.cancel().catch(() => undefined);
          throw new HttpFailure(`${describe(url)}: the answer is larger than ${maxBytes} bytes`);
        }
        chunks.push(chunk);
      }
    }
    return { status: response.status, bytes: Buffer.concat(chunks) };
  } catch (err) {
    if (err instanceof HttpFailure) throw err;
    if (signal.aborted) throw new HttpFailure(`${describe(url)}: no answer within ${options.timeoutMs} ms`);
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const code = cause?.code ?? "";
    throw new HttpFailure(`${describe(url)}: ${cause?.message ?? (err as Error).message}`, code === "ENOTFOUND" || code === "EAI_AGAIN");
  }
}

/** A URL as shown in errors: without its query (which holds the address looked up, already in the report). */
function describe(url: string): string {
  const parsed = new URL(url);
  return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
}

/** A key server's base URL as an HTTP one: `hkp://host` is HTTP on port 11371, `hkps://host` HTTPS. */
export function keyServerUrl(base: string): string {
  const url = new URL(base.trim());
  if (url.protocol === "hkp:") return `http://${url.hostname}:${url.port === "" ? "11371" : url.port}${trimPath(url.pathname)}`;
  if (url.protocol === "hkps:") return `https://${url.host}${trimPath(url.pathname)}`;
  if (url.protocol === "http:" || url.protocol === "https:") return `${url.protocol}//${url.host}${trimPath(url.pathname)}`;
  throw new Error(`key server ${base}: not an hkp, hkps, http or https URL`);
}

const trimPath = (path: string) => path.replace(/\/+$/, "");
