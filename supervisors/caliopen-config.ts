// Configuration of the Caliopen services (the node's own settings are in node-config.ts), from
// environment variables documented in the README.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Logger } from "pino";
import { SecretBox } from "../runtime/secret-box.ts";
import { StartupError } from "../runtime/startup-error.ts";

export interface CaliopenConfig {
  /** Seals identity credentials at rest; every node of a deployment must have the same key. */
  secrets: SecretBox;
  /** Where the HTTP API listens; null: no API on this node. */
  api: { host: string; port: number } | null;
  /** How long the API waits for a `deliver` reply (the contract says 30 s). */
  deliverTimeoutMs: number;
}

export function caliopenConfigFromEnv(env: NodeJS.ProcessEnv, dataDir: string, logger: Logger): CaliopenConfig {
  return {
    secrets: secretKey(env, dataDir, logger),
    api: apiListen(env.CALIOPEN_HTTP),
    deliverTimeoutMs: integer(env.CALIOPEN_DELIVER_TIMEOUT_MS, "CALIOPEN_DELIVER_TIMEOUT_MS", 30_000),
  };
}

/**
 * CALIOPEN_SECRET_KEY (base64 of 32 bytes, or 64 hex digits), else CALIOPEN_SECRET_KEY_FILE, else
 * `<data dir>/secret.key`, made on first start: right for one laptop node; a cluster must share a key.
 */
function secretKey(env: NodeJS.ProcessEnv, dataDir: string, logger: Logger): SecretBox {
  const given = env.CALIOPEN_SECRET_KEY?.trim();
  if (given) return parseKey(given, "CALIOPEN_SECRET_KEY");
  const file = env.CALIOPEN_SECRET_KEY_FILE?.trim() || join(dataDir, "secret.key");
  if (!existsSync(file)) {
    if (env.CALIOPEN_SECRET_KEY_FILE?.trim()) throw new StartupError(`CALIOPEN_SECRET_KEY_FILE ${file} does not exist`);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, `${SecretBox.generateKeyText()}\n`, { mode: 0o600, flag: "wx" });
    chmodSync(file, 0o600);
    logger.warn({ file }, "made a new secret key for identity credentials: give every node of a cluster the same key (CALIOPEN_SECRET_KEY)");
  }
  return parseKey(readFileSync(file, "utf8"), file);
}

function parseKey(text: string, source: string): SecretBox {
  try {
    return SecretBox.fromText(text);
  } catch (err) {
    throw new StartupError(`${source}: ${(err as Error).message} (make one with: openssl rand -base64 32)`);
  }
}

/** `host:port`, `port`, or `off`; default 127.0.0.1:8080. */
function apiListen(raw: string | undefined): CaliopenConfig["api"] {
  const value = raw?.trim() || "127.0.0.1:8080";
  if (value === "off") return null;
  const match = /^(?:(.+):)?([0-9]{1,5})$/.exec(value);
  const port = Number(match?.[2]);
  if (match === null || port > 65535) throw new StartupError(`CALIOPEN_HTTP must be host:port, a port, or off, got "${value}"`);
  return { host: (match[1] ?? "127.0.0.1").replace(/^\[(.*)\]$/, "$1"), port };
}

function integer(raw: string | undefined, name: string, fallback: number): number {
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new StartupError(`${name} must be a positive integer, got "${raw}"`);
  return value;
}
