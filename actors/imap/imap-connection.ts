// Opens an IMAP session for a remote identity: its server from `infos.inserver` (`host:port`) and its
// login (a password, or an OAuth 2.0 access token for XOAUTH2: mail-login.ts). The login lives only in
// this call: never in an actor's context or a log.
//
// The server is a user's choice, so it goes through the destination policy on every connect: the name
// is resolved and checked there, the session goes to a checked address, and TLS keeps the name for SNI
// and the certificate check. Port 993 is implicit TLS; any other port must offer STARTTLS before the
// password is sent, and the certificate must be valid — unless the operator excepted that server.
import { ImapFlow } from "imapflow";
import type { MailLogin } from "../mail/mail-login.ts";
import { connectInTurn } from "../network/connect-in-turn.ts";
import type { CheckedDestination, DestinationPolicy } from "../network/destination-policy.ts";
import { parseHostPort } from "../network/host-port.ts";
import { tlsFailure } from "../network/tls-failure.ts";
import type { Identity } from "../store/model.ts";
import { IMAP_PARSER_LIMITS } from "./imap-limits.ts";

export interface ImapOptions {
  /** Which servers may be reached, and how (the operator's allow list, TLS exceptions, extra CAs). */
  destinations: DestinationPolicy;
  connectTimeoutMs?: number;
  /** How soon a quiet connection enters IDLE (imapflow waits 15 s by default). */
  autoIdleDelayMs?: number;
  /** A connection whose server is silent this long while an answer is due fails (imapflow: 5 min). */
  socketTimeoutMs?: number;
  /** Gives up connecting and logging in (a deadline of the caller's); no effect once logged in. */
  signal?: AbortSignal;
  /** Closes the connection if it is not logged in this soon (a server trickling its answers keeps the socket's timer quiet). */
  loginTimeoutMs?: number;
}

export class ImapLoginError extends Error {
  override readonly name = "ImapLoginError";
}

export function imapAddress(identity: Identity): { host: string; port: number } {
  const server = typeof identity.infos.inserver === "string" ? identity.infos.inserver : "";
  const parsed = parseHostPort(server);
  if (parsed === null) throw new ImapLoginError(`identity ${identity.identity_id} has no IMAP server (infos.inserver "${server}")`);
  return parsed;
}

/** Connects and logs in; a refused login is an ImapLoginError with the server's words. */
export async function openImap(identity: Identity, auth: MailLogin, options: ImapOptions): Promise<ImapFlow> {
  const { host, port } = imapAddress(identity);
  // A refusal says why in its own words, the same whether anything listens there or not.
  const destination = await options.destinations.check(host, port, "IMAP server");
  return connectInTurn(destination.addresses, (address) => connect(destination, address, auth, options));
}

async function connect(destination: CheckedDestination, address: string, auth: MailLogin, options: ImapOptions): Promise<ImapFlow> {
  const where = `${destination.host}:${destination.port}`;
  const secure = destination.port === 993;
  const client = new ImapFlow({
    host: address,
    port: destination.port,
    ...(destination.servername !== undefined && { servername: destination.servername }),
    secure,
    // STARTTLS before the password, or no session at all (opportunistic only where the operator allows cleartext).
    ...(!secure && !destination.exceptions.cleartext && { doSTARTTLS: true }),
    tls: destination.tls,
    auth,
    logger: false,
    connectionTimeout: options.connectTimeoutMs ?? 15_000,
    ...(options.autoIdleDelayMs !== undefined && { autoIdleDelay: options.autoIdleDelayMs }),
    ...(options.socketTimeoutMs !== undefined && { socketTimeout: options.socketTimeoutMs }),
    // What one answer may make the node buffer: a huge literal or line fails the connection instead.
    ...IMAP_PARSER_LIMITS,
  });
  // A socket error after connect must not become an unhandled 'error' event.
  client.on("error", () => undefined);
  const giveUp = () => client.close();
  options.signal?.addEventListener("abort", giveUp, { once: true });
  const loginTimer = options.loginTimeoutMs === undefined ? null : setTimeout(() => client.close(), options.loginTimeoutMs);
  try {
    await client.connect();
  } catch (err) {
    const failure = err as Error & { authenticationFailed?: boolean; responseText?: string; syscall?: string };
    client.close();
    if (failure.authenticationFailed) throw new ImapLoginError(`login refused by ${where}: ${failure.responseText ?? failure.message}`);
    const tls = tlsFailure(failure);
    if (tls !== null) throw new Error(`IMAP server ${where}: not used: ${tls}`);
    throw Object.assign(new Error(`cannot connect to ${where}: ${failure.message}`), { syscall: failure.syscall });
  } finally {
    if (loginTimer !== null) clearTimeout(loginTimer);
    options.signal?.removeEventListener("abort", giveUp);
  }
  return client;
}

export async function closeImap(client: ImapFlow): Promise<void> {
  await client.logout().catch(() => client.close());
}
