// Reading one setting from the environment: every mistake is a StartupError that names the variable,
// so a node refuses to start with one line instead of running with a value it misread.
import { readFileSync } from "node:fs";
import { createSecureContext } from "node:tls";
import { StartupError } from "../runtime/startup-error.ts";

/** The variable's value, trimmed; undefined when unset or blank. */
export function textSetting(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === "" ? undefined : value;
}

/** A positive integer (`unit` words the message: "a positive number of milliseconds"). */
export function integerSetting(env: NodeJS.ProcessEnv, name: string, fallback: number, unit = "integer"): number {
  const raw = textSetting(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new StartupError(`${name} must be a positive ${unit}, got "${raw}"`);
  return value;
}

export function onOffSetting(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = textSetting(env, name);
  if (raw === undefined) return fallback;
  const value = raw.toLowerCase();
  if (["on", "true", "1", "yes"].includes(value)) return true;
  if (["off", "false", "0", "no"].includes(value)) return false;
  throw new StartupError(`${name} must be on or off, got "${raw}"`);
}

/** A comma-separated list; unset, blank or `off` is empty. */
export function listSetting(env: NodeJS.ProcessEnv, name: string): string[] {
  const value = textSetting(env, name);
  if (value === undefined || value === "off") return [];
  return value
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean);
}

/** `host:port`. */
export function hostPortSetting(env: NodeJS.ProcessEnv, name: string, fallback: string): { host: string; port: number } {
  const value = textSetting(env, name) ?? fallback;
  const match = /^(.+):([0-9]{1,5})$/.exec(value);
  if (match === null || Number(match[2]) > 65535) throw new StartupError(`${name} must be host:port, got "${value}"`);
  return { host: match[1] as string, port: Number(match[2]) };
}

/** Where to listen: `host:port`, a port (on loopback), or `off` (null). */
export function listenSetting(env: NodeJS.ProcessEnv, name: string, fallback: string): { host: string; port: number } | null {
  const value = textSetting(env, name) ?? fallback;
  if (value === "off") return null;
  const match = /^(?:(.+):)?([0-9]{1,5})$/.exec(value);
  const port = Number(match?.[2]);
  if (match === null || port > 65535) throw new StartupError(`${name} must be host:port, a port, or off, got "${value}"`);
  return { host: (match[1] ?? "127.0.0.1").replace(/^\[(.*)\]$/, "$1"), port };
}

/** The text of the file a variable names. */
export function fileSetting(path: string, name: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new StartupError(`${name}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** A PEM file of certificates. */
export function certificatesSetting(path: string, name: string): string {
  const text = fileSetting(path, name);
  if (!text.includes("-----BEGIN CERTIFICATE-----")) throw new StartupError(`${name}: ${path} holds no PEM certificate`);
  return text;
}

/**
 * A certificate (chain) and its key, as two PEM files named by `certName` and `keyName`: both or
 * neither (null), checked to be a usable pair here so that a bad one stops the node at start. The
 * key's content is never part of a message.
 */
export function tlsPairSetting(env: NodeJS.ProcessEnv, certName: string, keyName: string): { cert: string; key: string } | null {
  const certPath = textSetting(env, certName);
  const keyPath = textSetting(env, keyName);
  if (certPath === undefined && keyPath === undefined) return null;
  if (certPath === undefined || keyPath === undefined) throw new StartupError(`${certName} and ${keyName} go together`);
  const pair = { cert: fileSetting(certPath, certName), key: fileSetting(keyPath, keyName) };
  try {
    createSecureContext(pair);
  } catch (err) {
    throw new StartupError(`${certName} and ${keyName} (${certPath}, ${keyPath}) are not a certificate and its key: ${(err as Error).message}`);
  }
  return pair;
}
