// Opens an IMAP session for a remote identity: its server from `infos.inserver` (`host:port`; port 993
// is implicit TLS, any other port plain with STARTTLS when the server offers it) and its login from the
// sealed credentials. The credentials live only in this call: never in an actor's context or a log.
import { ImapFlow } from "imapflow";
import type { Credentials, Identity } from "../store/model.ts";
import { IMAP_PARSER_LIMITS } from "./imap-limits.ts";

export interface ImapOptions {
  /** Accept self-signed certificates (test servers, self-hosted mail). */
  allowUnauthorizedTls?: boolean;
  connectTimeoutMs?: number;
  /** How soon a quiet connection enters IDLE (imapflow waits 15 s by default). */
  autoIdleDelayMs?: number;
  /** A connection whose server is silent this long while an answer is due fails (imapflow: 5 min). */
  socketTimeoutMs?: number;
  /** Closes the connection, also while it is still logging in (a deadline of the caller's). */
  signal?: AbortSignal;
}

export class ImapLoginError extends Error {
  override readonly name = "ImapLoginError";
}

export function imapAddress(identity: Identity): { host: string; port: number } {
  const server = typeof identity.infos.inserver === "string" ? identity.infos.inserver : "";
  const match = /^(.+):([0-9]{1,5})$/.exec(server.trim());
  if (match === null) throw new ImapLoginError(`identity ${identity.identity_id} has no IMAP server (infos.inserver "${server}")`);
  return { host: match[1] as string, port: Number(match[2]) };
}

export function imapLogin(credentials: Credentials | null): { user: string; pass: string } {
  const user = credentials?.username ?? credentials?.inusername;
  const pass = credentials?.password ?? credentials?.inpassword;
  if (user === undefined || pass === undefined) throw new ImapLoginError("no IMAP username/password stored for this identity");
  return { user, pass };
}

/** Connects and logs in; a refused login is an ImapLoginError with the server's words. */
export async function openImap(identity: Identity, credentials: Credentials | null, options: ImapOptions = {}): Promise<ImapFlow> {
  const { host, port } = imapAddress(identity);
  const client = new ImapFlow({
    host,
    port,
    secure: port === 993,
    auth: imapLogin(credentials),
    logger: false,
    connectionTimeout: options.connectTimeoutMs ?? 15_000,
    tls: { rejectUnauthorized: options.allowUnauthorizedTls !== true },
    ...(options.autoIdleDelayMs !== undefined && { autoIdleDelay: options.autoIdleDelayMs }),
    ...(options.socketTimeoutMs !== undefined && { socketTimeout: options.socketTimeoutMs }),
    // What one answer may make the node buffer: a huge literal or line fails the connection instead.
    ...IMAP_PARSER_LIMITS,
  });
  // A socket error after connect must not become an unhandled 'error' event.
  client.on("error", () => undefined);
  options.signal?.addEventListener("abort", () => client.close(), { once: true });
  try {
    await client.connect();
  } catch (err) {
    const failure = err as Error & { authenticationFailed?: boolean; responseText?: string };
    client.close();
    if (failure.authenticationFailed) throw new ImapLoginError(`login refused by ${host}:${port}: ${failure.responseText ?? failure.message}`);
    throw new Error(`cannot connect to ${host}:${port}: ${failure.message}`);
  }
  return client;
}

export async function closeImap(client: ImapFlow): Promise<void> {
  await client.logout().catch(() => client.close());
}
