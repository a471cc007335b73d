// What "the same mail" means when two raws carry one Message-ID: the sha256 of the bytes after the
// leading trace fields. Each hop prepends its trace fields (RFC 5321 §4.4: Received, Return-Path; and the
// fields registered as trace information: Authentication-Results, ARC-*, Received-SPF; delivery agents'
// Delivered-To / X-Original-To; Google's X-Received; our IMAP bridge's X-Fetched-*), so copies of one mail
// that came by different paths (the MX and an IMAP import, two MTA retries with their own Received line)
// differ only there. Everything from the first other field on is hashed byte for byte: a different
// header or body below is different content. Only the leading block counts, so a trace field further
// down (where a sender may put anything) is content.
import { createHash, type Hash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";

const TRACE_FIELDS = new Set(["received", "x-received", "return-path", "delivered-to", "x-original-to", "received-spf", "authentication-results"]);
const TRACE_PREFIXES = ["arc-", "x-fetched-"];
/** A field name longer than this is not one of the trace fields: stop looking. */
const MAX_NAME = 64;

const COLON = 0x3a;
const LF = 0x0a;
const SPACE = 0x20;
const TAB = 0x09;

export function isTraceField(name: string): boolean {
  const lower = name.toLowerCase();
  return TRACE_FIELDS.has(lower) || TRACE_PREFIXES.some((prefix) => lower.startsWith(prefix));
}

/** Hashes a mail as it streams by, leaving out its leading trace fields. */
export class MailContentHash {
  private readonly hash: Hash = createHash("sha256");
  /** Still in the leading trace block. */
  private leading = true;
  /** At the first byte of a line. */
  private lineStart = true;
  /** Inside a trace field (its first line or a continuation line). */
  private inTrace = false;
  /** The start of the current line while it is not known yet whether it is a trace field. */
  private name: number[] | null = null;

  update(chunk: Uint8Array): void {
    if (!this.leading) {
      this.hash.update(chunk);
      return;
    }
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i] as number;
      if (this.lineStart) {
        this.lineStart = false;
        // A folded continuation of a trace field belongs to it.
        if (this.inTrace && (byte === SPACE || byte === TAB)) continue;
        this.inTrace = false;
        this.name = [];
      }
      if (this.name !== null) {
        this.name.push(byte);
        if (byte === COLON && isTraceField(Buffer.from(this.name.slice(0, -1)).toString("latin1"))) {
          this.name = null;
          this.inTrace = true;
        } else if (byte === COLON || byte === LF || byte <= SPACE || byte > 0x7e || this.name.length > MAX_NAME) {
          // Another field, the blank line, or not a header at all: the content starts with this line.
          this.leading = false;
          this.hash.update(Uint8Array.from(this.name));
          this.name = null;
          this.hash.update(chunk.subarray(i + 1));
          return;
        }
        continue;
      }
      if (byte === LF) this.lineStart = true;
    }
  }

  /** The hash (hex) of what came after the leading trace fields; a line left undecided counts as content. */
  digest(): string {
    if (this.name !== null && this.name.length > 0) this.hash.update(Uint8Array.from(this.name));
    this.name = null;
    return this.hash.digest("hex");
  }
}

/** A pass-through stream that hashes what goes through it; `digest()` once it has ended. */
export class MailContentHashStream extends Transform {
  private readonly hasher = new MailContentHash();
  private result: string | null = null;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hasher.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.result = this.hasher.digest();
    callback();
  }

  /** The content hash; null until the whole mail went through. */
  digest(): string | null {
    return this.result;
  }
}

/** The content hash of a whole mail read from a stream. */
export async function mailContentHash(source: AsyncIterable<Uint8Array>): Promise<string> {
  const hasher = new MailContentHash();
  for await (const chunk of source) hasher.update(chunk);
  return hasher.digest();
}
