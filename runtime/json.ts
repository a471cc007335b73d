// JSON on the wire: every payload is a UTF-8 JSON document. What comes from the bus may be hostile, so
// it is decoded within limits (size, nesting depth), checked before JSON.parse ever sees it.
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(stringify(value));
}

/**
 * JSON.stringify, BigInts written as strings. A replacer slows every stringify down by a third (it is
 * called for every value), so it only runs again when the plain one met a BigInt.
 */
function stringify(value: unknown): string {
  try {
    return JSON.stringify(value);
  } catch (err) {
    if (err instanceof TypeError && /BigInt/i.test(err.message)) return JSON.stringify(value, bigintSafe);
    throw err;
  }
}

export interface JsonLimits {
  /** Largest document accepted, in bytes. */
  maxBytes: number;
  /** Deepest nesting of objects and arrays accepted (a flat object is depth 1). */
  maxDepth: number;
}

/**
 * The limits of every message decoded from the bus: orders at the entry points, actor mailboxes, the
 * node inbox, keyed orders, debug requests. Contract orders are a few hundred bytes and flat.
 */
export const BUS_JSON_LIMITS: JsonLimits = { maxBytes: 64 * 1024, maxDepth: 32 };

export type DecodeResult = { ok: true; value: unknown } | { ok: false; error: string };

/** Decodes JSON; with `limits`, refuses an oversized or too deeply nested document before parsing it. */
export function decodeJson(bytes: Uint8Array, limits?: JsonLimits): DecodeResult {
  if (limits !== undefined && bytes.length > limits.maxBytes) {
    return { ok: false, error: `payload is ${bytes.length} bytes, over the limit of ${limits.maxBytes} bytes` };
  }
  const text = decoder.decode(bytes);
  if (text.trim() === "") return { ok: false, error: "empty payload, expected a JSON object" };
  if (limits !== undefined && nestingExceeds(text, limits.maxDepth)) {
    return { ok: false, error: `JSON nested deeper than the limit of ${limits.maxDepth} levels` };
  }
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return { ok: false, error: `invalid JSON: ${(err as Error).message}` };
  }
}

/** Decodes a message that came from the bus, within BUS_JSON_LIMITS. */
export function decodeBusJson(bytes: Uint8Array): DecodeResult {
  return decodeJson(bytes, BUS_JSON_LIMITS);
}

const OPEN_OBJECT = 0x7b; // {
const OPEN_ARRAY = 0x5b; // [
const CLOSE_OBJECT = 0x7d; // }
const CLOSE_ARRAY = 0x5d; // ]
const QUOTE = 0x22; // "
const BACKSLASH = 0x5c; // \

/**
 * Whether the text nests objects/arrays deeper than `maxDepth`. One pass, no recursion, brackets inside
 * strings ignored; it does not validate the JSON (JSON.parse does that afterwards).
 */
export function nestingExceeds(text: string, maxDepth: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (++depth > maxDepth) return true;
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      depth--;
    }
  }
  return false;
}

export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

// imapflow and friends hand out BigInts; JSON.stringify throws on them.
function bigintSafe(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}
