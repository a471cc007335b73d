// How many server-sent event streams of one kind (the dashboard's, the users' notifications) a node holds:
// each holds a connection, a socket buffer and what feeds it, so their number is bounded per node and
// per token, a stream past either bound being refused with a 429 before anything is opened. And how such
// a stream's answer begins: the hijacked response's head, with the headers set on the reply before
// (CORS) kept.
import type { ServerResponse } from "node:http";
import type { FastifyReply } from "fastify";
import { HttpError } from "./http-error.ts";

export interface StreamBounds {
  /** Streams open at once on this node, all tokens together. */
  maxStreams: number;
  /** Streams one token may hold open at once on this node. */
  maxStreamsPerToken: number;
}

/** Seconds a refused client is told to wait (Retry-After). */
const RETRY_AFTER_S = 10;

export class EventStreamSlots<E extends { readonly tokenId: string }> implements Iterable<E> {
  private readonly open = new Set<E>();
  private readonly perToken = new Map<string, number>();

  /** `what`: the streams' name in refusals ("dashboard event streams"). */
  constructor(
    private readonly bounds: StreamBounds,
    private readonly what: string,
  ) {}

  /** Why a new stream for this token is refused now, or null. */
  refusal(tokenId: string): string | null {
    if (this.open.size >= this.bounds.maxStreams) return `this node serves at most ${this.bounds.maxStreams} ${this.what} at once`;
    if ((this.perToken.get(tokenId) ?? 0) >= this.bounds.maxStreamsPerToken)
      return `token ${tokenId} holds ${this.bounds.maxStreamsPerToken} ${this.what} on this node already (the most allowed)`;
    return null;
  }

  /** Throws the 429 (with Retry-After) when a new stream for this token is refused. */
  admit(tokenId: string, reply: FastifyReply): void {
    const refusal = this.refusal(tokenId);
    if (refusal === null) return;
    void reply.header("retry-after", RETRY_AFTER_S);
    throw new HttpError(429, refusal);
  }

  add(entry: E): void {
    this.open.add(entry);
    this.perToken.set(entry.tokenId, (this.perToken.get(entry.tokenId) ?? 0) + 1);
  }

  /** Whether it was open (it is not any more). */
  delete(entry: E): boolean {
    if (!this.open.delete(entry)) return false;
    const left = (this.perToken.get(entry.tokenId) ?? 1) - 1;
    if (left === 0) this.perToken.delete(entry.tokenId);
    else this.perToken.set(entry.tokenId, left);
    return true;
  }

  has(entry: E): boolean {
    return this.open.has(entry);
  }

  get size(): number {
    return this.open.size;
  }

  [Symbol.iterator](): Iterator<E> {
    return this.open[Symbol.iterator]();
  }
}

/** Takes the response over from Fastify and sends the head of an event stream; the headers set on `reply` so far go with it. */
export function startEventStream(reply: FastifyReply, headers: Record<string, string> = {}): ServerResponse {
  const kept: Record<string, string | number | string[]> = {};
  for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) kept[name] = value;
  reply.hijack();
  reply.raw.writeHead(200, {
    ...kept,
    ...headers,
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-store",
    connection: "keep-alive",
    // nginx would otherwise buffer the stream.
    "x-accel-buffering": "no",
  });
  reply.raw.flushHeaders();
  return reply.raw;
}
