// Sends one ready-made message (raw RFC 5322 bytes and its envelope) through an SMTP server with
// nodemailer, on a fresh connection closed afterwards. A refusal becomes an SmtpSendError whose message
// carries the server's own response ("550 5.1.1 unknown user"). Credentials go to nodemailer only:
// they are never part of an error message or of anything logged here.
import { createTransport } from "nodemailer";
import { tlsFailure } from "../network/tls-failure.ts";
import type { MailLogin } from "./mail-login.ts";

export interface SmtpTarget {
  /** What to connect to: a host, or the checked address of a user's server (its name then in `tls.servername`). */
  host: string;
  port: number;
  /** Implicit TLS from the first byte (port 465); otherwise STARTTLS when the server offers it. */
  secure?: boolean;
  /** A password (AUTH PLAIN/LOGIN) or an OAuth 2.0 access token (AUTH XOAUTH2). */
  auth?: MailLogin;
  /** Never upgrade with STARTTLS (a plain-text relay on a trusted network). */
  ignoreTLS?: boolean;
  /** Refuse to go on without STARTTLS (e.g. before sending a password over the network). */
  requireTLS?: boolean;
  /** Log in even when the server does not offer AUTH, and fail if it cannot: a user's server must know the user. */
  requireAuth?: boolean;
  /** TLS: the name for SNI and the certificate check, the CAs trusted, whether the certificate is verified. */
  tls?: { servername?: string; ca?: string[]; rejectUnauthorized?: boolean };
  /** The server as shown in messages and logs (`smtp.example.com:587`); `host:port` by default. */
  label?: string;
  /** The name given in EHLO; the machine's host name by default. */
  name?: string;
}

export interface SmtpTimeouts {
  connectionMs: number;
  greetingMs: number;
  socketMs: number;
}

/** Short enough for a `deliver` requester, which waits 30 s (docs/decisions.md §3). */
export const DEFAULT_SMTP_TIMEOUTS: SmtpTimeouts = { connectionMs: 10_000, greetingMs: 10_000, socketMs: 20_000 };

export interface SmtpSendResult {
  /** The server's reply to the end of DATA. */
  response: string;
  accepted: string[];
  /** Recipients refused at RCPT while others were accepted (the message went to the others). */
  rejected: { address: string; response: string }[];
}

export class SmtpSendError extends Error {
  override readonly name = "SmtpSendError";
  constructor(
    message: string,
    /** The server's reply code, when the server answered. */
    readonly responseCode: number | null,
    /** Whether retrying the same message cannot help (a 5xx reply). */
    readonly permanent: boolean,
    /** The system call that failed, if one did: `connect` means nothing answered (another address may). */
    readonly syscall?: string,
    /** The server refused the login (its AUTH answer). */
    readonly authRefused = false,
  ) {
    super(message);
  }
}

interface NodemailerError extends Error {
  code?: string;
  response?: string;
  responseCode?: number;
  command?: string;
  syscall?: string;
}

export function describeTarget(target: Pick<SmtpTarget, "host" | "port" | "label">): string {
  return target.label ?? `${target.host}:${target.port}`;
}

export async function sendRaw(
  target: SmtpTarget,
  envelope: { from: string; to: string[] },
  raw: Buffer,
  timeouts: SmtpTimeouts = DEFAULT_SMTP_TIMEOUTS,
): Promise<SmtpSendResult> {
  const transport = createTransport({
    host: target.host,
    port: target.port,
    secure: target.secure ?? false,
    ignoreTLS: target.ignoreTLS ?? false,
    requireTLS: target.requireTLS ?? false,
    ...(target.auth && {
      auth:
        "accessToken" in target.auth
          ? { type: "OAuth2", user: target.auth.user, accessToken: target.auth.accessToken }
          : { user: target.auth.user, pass: target.auth.pass },
    }),
    ...(target.requireAuth === true && { forceAuth: true }),
    ...(target.tls && { tls: target.tls }),
    ...(target.name && { name: target.name }),
    connectionTimeout: timeouts.connectionMs,
    greetingTimeout: timeouts.greetingMs,
    socketTimeout: timeouts.socketMs,
    logger: false,
    debug: false,
  });
  try {
    const info = await transport.sendMail({ envelope, raw });
    const rejectedErrors = ((info as { rejectedErrors?: NodemailerError[] }).rejectedErrors ?? []) as (NodemailerError & { recipient?: string })[];
    return {
      response: String(info.response ?? ""),
      accepted: (info.accepted ?? []).map(String),
      rejected: (info.rejected ?? []).map((address) => {
        const text = String(address);
        const error = rejectedErrors.find((e) => e.recipient === text);
        return { address: text, response: error?.response ?? "" };
      }),
    };
  } catch (err) {
    throw toSendError(target, err as NodemailerError);
  } finally {
    transport.close();
  }
}

function toSendError(target: SmtpTarget, err: NodemailerError): SmtpSendError {
  const where = `SMTP server ${describeTarget(target)}`;
  const response = (err.response ?? "").trim();
  const reason = (err.message ?? String(err)).trim();
  const text = response !== "" && !reason.includes(response) ? `${reason}: ${response}` : reason;
  const code = typeof err.responseCode === "number" ? err.responseCode : null;
  const tls = tlsFailure(err);
  if (tls !== null) return new SmtpSendError(`${where}: not used: ${tls}`, code, true);
  return new SmtpSendError(
    `${where}: ${text}${err.command ? ` (after ${err.command})` : ""}`,
    code,
    code !== null && code >= 500,
    err.syscall,
    err.code === "EAUTH",
  );
}
