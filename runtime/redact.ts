// Secrets (passwords, tokens, credentials) never leave the process through logs or debug output.
const SECRET_KEY = /pass(word|wd|phrase)?$|secret|token|credential|authorization|api[_-]?key|private[_-]?key/i;
export const REDACTED = "[redacted]";

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/** A deep copy of `value` with every secret-looking field replaced by a marker. */
export function redactSecrets(value: unknown, depth = 0): unknown {
  if (depth > 32) return "[too deep]";
  if (Array.isArray(value)) return value.map((item) => redactSecrets(item, depth + 1));
  if (typeof value === "bigint") return value.toString();
  if (typeof value !== "object" || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    out[key] = isSecretKey(key) && item !== null && item !== undefined ? REDACTED : redactSecrets(item, depth + 1);
  }
  return out;
}
