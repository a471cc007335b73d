// The Received trace field the inbound SMTP server prepends to each mail it stores (RFC 5321 §4.4):
// who handed it over (HELO name and address), to whom (CALIOPEN_MAIL_HOST), how (ESMTP, or ESMTPS over
// STARTTLS, RFC 3848), the session id, the recipient when there is only one (naming several would tell
// each who else got it, Bcc included), and when.
import { isIPv6 } from "node:net";

export interface ReceivedTrace {
  /** The name the client gave with HELO/EHLO (false or empty: none). */
  helo: string | false;
  remoteAddress: string;
  /** This server's name. */
  by: string;
  /** smtp-server's transmission type: SMTP, ESMTP, ESMTPS, ... */
  protocol: string;
  id: string;
  recipients: string[];
  date: Date;
}

/** The field, folded, with the line ending the mail itself uses. */
export function receivedHeader(trace: ReceivedTrace, newline: "\r\n" | "\n" = "\r\n"): string {
  const from = `from ${token(trace.helo || "unknown")} (${addressLiteral(trace.remoteAddress)})`;
  const by = `by ${token(trace.by)} (Caliopen) with ${token(trace.protocol)} id ${token(trace.id)}`;
  const only = trace.recipients.length === 1 ? trace.recipients[0] : undefined;
  const clauses = [`Received: ${from}`, by, ...(only === undefined ? [] : [`for <${mailbox(only)}>`])];
  return `${clauses.join(`${newline}\t`)};${newline}\t${rfc5322Date(trace.date)}${newline}`;
}

/** The line ending of the mail: bare LF if its first line ends so, CRLF otherwise. */
export function newlineOf(bytes: Uint8Array): "\r\n" | "\n" {
  const lf = bytes.indexOf(0x0a);
  return lf > 0 && bytes[lf - 1] !== 0x0d ? "\n" : "\r\n";
}

/** What the client sent, reduced to characters a host name or literal may hold (never a line break). */
function token(value: string): string {
  return value.replace(/[^A-Za-z0-9.:_[\]-]/g, "").slice(0, 255) || "unknown";
}

function mailbox(address: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
  return address.replace(/[\x00-\x20<>()\\;,"\x7f]/g, "").slice(0, 254);
}

function addressLiteral(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped !== undefined) return `[${mapped}]`;
  return isIPv6(address) ? `[IPv6:${address}]` : `[${token(address)}]`;
}

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** RFC 5322 date-time in UTC: `Tue, 05 Mar 2024 10:20:30 +0000`. */
export function rfc5322Date(date: Date): string {
  const two = (n: number) => String(n).padStart(2, "0");
  return `${DAYS[date.getUTCDay()]}, ${two(date.getUTCDate())} ${MONTHS[date.getUTCMonth()]} ${date.getUTCFullYear()} ${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())} +0000`;
}
