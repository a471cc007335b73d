// JSON on the wire: every payload is a UTF-8 JSON document.
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value, bigintSafe));
}

export type DecodeResult =
  | { ok: true; value: unknown }
  | { ok: false; error: string };

export function decodeJson(bytes: Uint8Array): DecodeResult {
  const text = decoder.decode(bytes);
  if (text.trim() === "") return { ok: false, error: "empty payload, expected a JSON object" };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return { ok: false, error: `invalid JSON: ${(err as Error).message}` };
  }
}

export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

// imapflow and friends hand out BigInts; JSON.stringify throws on them.
function bigintSafe(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}
