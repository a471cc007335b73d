// Where a NATS deployment is and how to prove who we are to it, with the setting names the `nats` CLI
// uses (NATS_URL, NATS_USER, NATS_PASSWORD, NATS_TOKEN, NATS_CREDS, NATS_NKEY, NATS_CA, NATS_CERT,
// NATS_KEY), so an operator configures a node, the CLI and the `nats` tool the same way.
import { readFile } from "node:fs/promises";
import { type ConnectionOptions, credsAuthenticator, nkeyAuthenticator } from "@nats-io/nats-core";
import { fromSeed } from "@nats-io/nkeys";
import { StartupError } from "./startup-error.ts";

export interface NatsEndpoint {
  /** One or more server URLs, comma-separated; a `tls://` URL requires TLS. */
  url: string;
  user?: string;
  password?: string;
  token?: string;
  /** Path of a `.creds` file (user JWT and nkey seed). */
  creds?: string;
  /** Path of a file holding a user nkey seed (`SU…`). */
  nkey?: string;
  /** Path of the CA certificate(s) the servers' certificates must chain to. */
  ca?: string;
  /** Path of our client certificate and its key, for servers that verify clients (mutual TLS). */
  cert?: string;
  key?: string;
  /** Prefix of our reply inboxes, for users whose permissions allow only their own (`_INBOX.observer`). */
  inboxPrefix?: string;
}

/** The environment variable that carries each field. */
export const NATS_ENV = {
  url: "NATS_URL",
  user: "NATS_USER",
  password: "NATS_PASSWORD",
  token: "NATS_TOKEN",
  creds: "NATS_CREDS",
  nkey: "NATS_NKEY",
  ca: "NATS_CA",
  cert: "NATS_CERT",
  key: "NATS_KEY",
  inboxPrefix: "NATS_INBOX_PREFIX",
} as const satisfies Record<keyof NatsEndpoint, string>;

type CredentialField = Exclude<keyof NatsEndpoint, "url">;
const CREDENTIAL_FIELDS = Object.keys(NATS_ENV).filter((field) => field !== "url") as CredentialField[];

/** How a client authenticates, for debug output (never the secret itself). */
export type AuthMethod = "creds" | "nkey" | "user" | "token" | "none";

/**
 * The endpoint the environment describes, or undefined when NATS_URL is unset. Credentials written in
 * the URL (`nats://user:pass@host`, `nats://token@host`) are taken out of it: nats.js ignores them.
 */
export function natsEndpointFromEnv(env: NodeJS.ProcessEnv, url: string | undefined = nonEmpty(env.NATS_URL)): NatsEndpoint | undefined {
  const given: Partial<NatsEndpoint> = {};
  for (const field of CREDENTIAL_FIELDS) {
    const value = field === "password" || field === "token" ? nonEmptyRaw(env[NATS_ENV[field]]) : nonEmpty(env[NATS_ENV[field]]);
    if (value !== undefined) given[field] = value;
  }
  if (url === undefined) {
    const stray = CREDENTIAL_FIELDS.filter((field) => given[field] !== undefined).map((field) => NATS_ENV[field]);
    if (stray.length > 0) {
      throw new StartupError(
        `${stray.join(", ")} ${stray.length > 1 ? "are" : "is"} set but NATS_URL is not: the embedded nats-server makes its own credentials (set NATS_URL to join another NATS)`,
      );
    }
    return undefined;
  }
  return checkEndpoint({ ...credentialsInUrl(url), ...given });
}

/** The environment variables that describe `endpoint`, for a child process. */
export function natsEndpointEnv(endpoint: NatsEndpoint): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [field, name] of Object.entries(NATS_ENV) as [keyof NatsEndpoint, string][]) {
    const value = endpoint[field];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

export function authMethod(endpoint: NatsEndpoint): AuthMethod {
  if (endpoint.creds !== undefined) return "creds";
  if (endpoint.nkey !== undefined) return "nkey";
  if (endpoint.user !== undefined && endpoint.password !== undefined) return "user";
  if (endpoint.token !== undefined || endpoint.user !== undefined) return "token";
  return "none";
}

export function usesTls(endpoint: NatsEndpoint): boolean {
  return endpoint.ca !== undefined || endpoint.cert !== undefined || servers(endpoint).some((server) => server.startsWith("tls://"));
}

export function servers(endpoint: NatsEndpoint): string[] {
  return endpoint.url
    .split(",")
    .map((server) => server.trim())
    .filter((server) => server !== "");
}

/** nats://user:pass@host → nats://***@host, so URLs can be logged. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/,]*@/g, "//***@");
}

/**
 * The nats.js options that authenticate and secure a connection to the endpoint. Files are read here,
 * so a missing or unreadable one is reported by its setting's name before any connection is tried.
 */
export async function natsConnectOptions(endpoint: NatsEndpoint): Promise<ConnectionOptions> {
  const options: ConnectionOptions = { servers: servers(endpoint).map((server) => server.replace(/^tls:\/\//, "nats://")) };
  switch (authMethod(endpoint)) {
    case "creds": {
      const creds = await readSetting("creds", endpoint.creds as string);
      if (!/-----BEGIN NATS USER JWT-----/.test(creds) || !/\bSU[A-Z2-7]{50,}\b/.test(creds)) {
        throw new StartupError(`NATS_CREDS ${endpoint.creds}: not a NATS credentials file (a user JWT and an nkey seed)`);
      }
      options.authenticator = credsAuthenticator(new TextEncoder().encode(creds));
      break;
    }
    case "nkey":
      options.authenticator = nkeyAuthenticator(seedBytes(await readSetting("nkey", endpoint.nkey as string), `NATS_NKEY ${endpoint.nkey}`));
      break;
    case "user":
      options.user = endpoint.user as string;
      options.pass = endpoint.password as string;
      break;
    case "token":
      // The `nats` CLI takes a lone NATS_USER for a token.
      options.token = (endpoint.token ?? endpoint.user) as string;
      break;
    case "none":
      break;
  }
  if (endpoint.inboxPrefix !== undefined) options.inboxPrefix = endpoint.inboxPrefix;
  if (usesTls(endpoint)) {
    options.tls = {
      ...(endpoint.ca !== undefined && { ca: await readSetting("ca", endpoint.ca) }),
      ...(endpoint.cert !== undefined && { cert: await readSetting("cert", endpoint.cert) }),
      ...(endpoint.key !== undefined && { key: await readSetting("key", endpoint.key) }),
    };
  }
  return options;
}

/** The public key of a user nkey seed, as nats-server's configuration names the user. */
export function nkeyPublicKey(seedText: string, source: string): string {
  return fromSeed(seedBytes(seedText, source)).getPublicKey();
}

/**
 * A one-line account of why a connection attempt failed, naming what the operator should check; never
 * the credential itself.
 */
export function explainConnectError(endpoint: NatsEndpoint, err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown } | null)?.code;
  const where = redactUrl(endpoint.url);
  if (/authorization violation|authentication/i.test(message)) {
    const method = authMethod(endpoint);
    const hint =
      method === "none"
        ? "the server requires credentials: set NATS_CREDS, NATS_NKEY, NATS_USER and NATS_PASSWORD, or NATS_TOKEN"
        : `the server refused our ${describeMethod(method)}`;
    return `NATS at ${where} refused the connection: authorization violation (${hint})`;
  }
  if (/certificate|self.signed|tls|ssl|handshake/i.test(message) || (typeof code === "string" && code.startsWith("ERR_TLS"))) {
    return `cannot connect to NATS at ${where}: TLS failed: ${message} (check NATS_CA, NATS_CERT and NATS_KEY)`;
  }
  return `cannot reach NATS at ${where}: ${message}`;
}

function describeMethod(method: AuthMethod): string {
  switch (method) {
    case "creds":
      return "credentials file (NATS_CREDS)";
    case "nkey":
      return "nkey (NATS_NKEY)";
    case "user":
      return "user and password (NATS_USER, NATS_PASSWORD)";
    case "token":
      return "token (NATS_TOKEN)";
    case "none":
      return "anonymous connection";
  }
}

function checkEndpoint(endpoint: NatsEndpoint): NatsEndpoint {
  if (servers(endpoint).length === 0) throw new StartupError("NATS_URL names no server");
  const methods = [
    endpoint.creds !== undefined && "NATS_CREDS",
    endpoint.nkey !== undefined && "NATS_NKEY",
    (endpoint.user !== undefined || endpoint.password !== undefined) && "NATS_USER/NATS_PASSWORD",
    endpoint.token !== undefined && "NATS_TOKEN",
  ].filter((method): method is string => method !== false);
  if (methods.length > 1) throw new StartupError(`${methods.join(" and ")} are both set: a connection uses one way to authenticate`);
  if (endpoint.password !== undefined && endpoint.user === undefined) throw new StartupError("NATS_PASSWORD is set without NATS_USER");
  if ((endpoint.cert === undefined) !== (endpoint.key === undefined))
    throw new StartupError("NATS_CERT and NATS_KEY go together (a client certificate and its key)");
  if (endpoint.inboxPrefix !== undefined && !/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(endpoint.inboxPrefix)) {
    throw new StartupError(`NATS_INBOX_PREFIX must be subject tokens without wildcards, got "${endpoint.inboxPrefix}"`);
  }
  return endpoint;
}

/** Moves `user:pass@` or `token@` out of the URLs (all servers of a cluster share them). */
function credentialsInUrl(url: string): NatsEndpoint {
  let user: string | undefined;
  let password: string | undefined;
  const cleaned = url
    .split(",")
    .map((server) => {
      const match = /^([a-z]+:\/\/)?([^@/]*)@(.*)$/i.exec(server.trim());
      if (match === null) return server.trim();
      const [name, pass] = (match[2] as string).split(":", 2).map((part) => decodeURIComponent(part));
      user = name;
      password = pass;
      return `${match[1] ?? ""}${match[3]}`;
    })
    .join(",");
  if (user === undefined) return { url: cleaned };
  return password === undefined ? { url: cleaned, token: user } : { url: cleaned, user, password };
}

async function readSetting(field: "creds" | "nkey" | "ca" | "cert" | "key", path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : (err as Error).message;
    throw new StartupError(`${NATS_ENV[field]} ${path}: cannot read it (${why})`);
  }
}

function seedBytes(text: string, source: string): Uint8Array {
  const seed = /\bSU[A-Z2-7]{50,}\b/.exec(text)?.[0];
  if (seed === undefined) throw new StartupError(`${source}: not a user nkey seed (a line starting with SU)`);
  try {
    fromSeed(new TextEncoder().encode(seed));
  } catch {
    throw new StartupError(`${source}: the nkey seed is damaged`);
  }
  return new TextEncoder().encode(seed);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === "" ? undefined : value.trim();
}

/** Passwords and tokens are taken as written: a space may be part of them. */
function nonEmptyRaw(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}
