// The node's HTTP requests (key discovery and publishing, OAuth 2.0 token refreshes): a deadline for the
// whole exchange (redirects and body included), a cap on the size of what is read (a key server may hold
// keys of many megabytes, e.g. flooded with signatures), and errors that say what failed in words an
// operator can act on.
//
// A host derived from a contact's address (a Web Key Directory) is untrusted: with `destinations`, each
// hop — the first request and every redirect, followed here one by one — is checked by the destination
// policy, the connection goes to the checked addresses only, and plain HTTP is refused unless the
// operator excepted that server. The operator's servers (key server, OAuth 2.0 providers) are trusted
// and asked without a policy.
import { request as httpGet, type IncomingMessage, type RequestOptions } from "node:http";
import { request as httpsGet } from "node:https";
import { DestinationNotFound, type DestinationPolicy, DestinationRefused } from "./destination-policy.ts";
import { pinnedLookup } from "./pinned-lookup.ts";

/** What is read of one answer at most; more is a failure, not a truncated key. */
export const MAX_ANSWER_BYTES = 4 * 1024 * 1024;
/** Redirects followed at most (WKD servers redirect to their CDN, once or twice). */
export const MAX_REDIRECTS = 5;

export interface HttpAnswer {
  status: number;
  bytes: Uint8Array;
}

export interface HttpOptions {
  timeoutMs: number;
  method?: "GET" | "POST";
  body?: string;
  headers?: Record<string, string>;
  maxBytes?: number;
  /** The policy that every hop must pass (hosts named by users or contacts); absent for the operator's servers. */
  destinations?: DestinationPolicy;
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

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

export async function httpRequest(url: string, options: HttpOptions): Promise<HttpAnswer> {
  const maxBytes = options.maxBytes ?? MAX_ANSWER_BYTES;
  const signal = AbortSignal.timeout(options.timeoutMs);
  let current = new URL(url);
  try {
    for (let hop = 0; ; hop++) {
      const response = await send(current, options, signal);
      const location = response.headers.location;
      // Only GETs follow redirects: a key upload is not re-sent elsewhere.
      if ((options.method ?? "GET") === "GET" && REDIRECTS.has(response.statusCode ?? 0) && location !== undefined) {
        response.destroy();
        if (hop === MAX_REDIRECTS) throw new HttpFailure(`${describe(url)}: more than ${MAX_REDIRECTS} redirects`);
        current = new URL(location, current);
        continue;
      }
      return { status: response.statusCode ?? 0, bytes: await readCapped(response, maxBytes, current) };
    }
  } catch (err) {
    if (err instanceof HttpFailure) throw err;
    if (signal.aborted) throw new HttpFailure(`${describe(current.href)}: no answer within ${options.timeoutMs} ms`);
    // A WKD host that does not exist means "no key there"; a redirect to nowhere is a failure.
    if (err instanceof DestinationNotFound) throw new HttpFailure(hopOf(url, current, err.message), current.href === new URL(url).href);
    if (err instanceof DestinationRefused) throw new HttpFailure(hopOf(url, current, err.message));
    const code = (err as { code?: string }).code ?? "";
    throw new HttpFailure(
      hopOf(url, current, `${describe(current.href)}: ${(err as Error).message}`),
      current.href === new URL(url).href && (code === "ENOTFOUND" || code === "EAI_AGAIN"),
    );
  }
}

/** One request, to a checked destination when there is a policy. */
async function send(url: URL, options: HttpOptions, signal: AbortSignal): Promise<IncomingMessage> {
  const secure = url.protocol === "https:";
  if (!secure && url.protocol !== "http:") throw new HttpFailure(`${describe(url.href)}: not an http or https URL`);
  const connection: RequestOptions & { rejectUnauthorized?: boolean; ca?: string[] } = {};
  if (options.destinations !== undefined) {
    const port = url.port === "" ? (secure ? 443 : 80) : Number(url.port);
    const checked = await options.destinations.check(url.hostname, port, "web server");
    if (!secure && !checked.exceptions.cleartext)
      throw new HttpFailure(`${describe(url.href)}: plain HTTP is refused for a server named by a user or contact (HTTPS required)`);
    Object.assign(connection, { lookup: pinnedLookup(checked), ...checked.tls });
  }
  return new Promise((resolve, reject) => {
    const request = (secure ? httpsGet : httpGet)(url, {
      method: options.method ?? "GET",
      headers: options.headers,
      signal,
      // A fresh connection each time: a pooled one may have been made for another answer of DNS.
      agent: false,
      ...connection,
    });
    request.once("response", resolve);
    request.once("error", reject);
    request.end(options.body);
  });
}

async function readCapped(response: IncomingMessage, maxBytes: number, url: URL): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of response as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) {
      response.destroy();
      throw new HttpFailure(`${describe(url.href)}: the answer is larger than ${maxBytes} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** A failure at a redirect's target says where it was redirected from. */
function hopOf(first: string, current: URL, message: string): string {
  return current.href === new URL(first).href ? message : `${describe(first)}: redirected, then ${message}`;
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
