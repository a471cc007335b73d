// Where the secret keys that seal identity credentials come from: CALIOPEN_SECRET_KEY, else
// CALIOPEN_SECRET_KEY_FILE, else `<data dir>/secret.key`. Each may hold several keys (comma- or
// newline-separated; the first seals, all open). Only a node running its own nats-server makes a key
// when there is none: a node joining a shared NATS must be given the deployment's key, or it would seal
// credentials the other nodes cannot open. Errors name sources and key ids, never a key.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { Logger } from "pino";
import { SecretBox } from "../runtime/secret-box.ts";
import { StartupError } from "../runtime/startup-error.ts";

/** The data directory a node uses (node-config.ts reads CALIOPEN_DATA_DIR the same way), for the CLI. */
export function dataDirFromEnv(env: NodeJS.ProcessEnv): string {
  return resolve(env.CALIOPEN_DATA_DIR?.trim() || "data");
}

/** The keys configured, or null when there are none (no variable, no default key file). Never makes one. */
export function configuredSecretKeys(env: NodeJS.ProcessEnv, dataDir: string): SecretBox | null {
  const given = env.CALIOPEN_SECRET_KEY?.trim();
  if (given) return parseKeys(given, "CALIOPEN_SECRET_KEY");
  const named = env.CALIOPEN_SECRET_KEY_FILE?.trim();
  const file = named || defaultKeyFile(dataDir);
  if (!existsSync(file)) {
    if (named) throw new StartupError(`CALIOPEN_SECRET_KEY_FILE ${file} does not exist`);
    return null;
  }
  return parseKeys(readFileSync(file, "utf8"), file);
}

/** A node's keys: the configured ones; with none, a new key file, but only for a node with an embedded nats-server. */
export function nodeSecretKeys(env: NodeJS.ProcessEnv, dataDir: string, logger: Logger): SecretBox {
  const configured = configuredSecretKeys(env, dataDir);
  if (configured !== null) return configured;
  if (env.NATS_URL?.trim()) {
    throw new StartupError(
      "no secret key: a node joining NATS_URL needs the deployment's key in CALIOPEN_SECRET_KEY or CALIOPEN_SECRET_KEY_FILE (only a node running its own nats-server makes one)",
    );
  }
  const file = defaultKeyFile(dataDir);
  mkdirSync(dirname(file), { recursive: true });
  let made = true;
  try {
    writeFileSync(file, `${SecretBox.generateKeyText()}\n`, { mode: 0o600, flag: "wx" });
    chmodSync(file, 0o600);
  } catch (err) {
    // Another process on the same data dir made it first: use theirs.
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    made = false;
  }
  const keys = parseKeys(readFileSync(file, "utf8"), file);
  // A first start making its key is the expected path, not a problem: info, so a clean start warns of nothing.
  if (made)
    logger.info(
      { file, kid: keys.kid },
      "made a new secret key for identity credentials: nodes joining this one's NATS need it too (CALIOPEN_SECRET_KEY_FILE)",
    );
  return keys;
}

function defaultKeyFile(dataDir: string): string {
  return join(dataDir, "secret.key");
}

function parseKeys(text: string, source: string): SecretBox {
  try {
    return SecretBox.fromText(text);
  } catch (err) {
    throw new StartupError(`${source}: ${(err as Error).message} (make one with: openssl rand -base64 32)`);
  }
}
