// The operator's allow list of destinations (CALIOPEN_ALLOWED_DESTINATIONS): comma-separated entries,
// each a network or a single server, with optional TLS exceptions after `+`:
//
//   10.0.0.0/8            every address of a network (CIDR; an address alone is a /32 or /128)
//   fd00::/8
//   mail.internal:143     one server: that name (whatever it resolves to) or that address, at that port
//   [fd00::25]:587
//   …+cleartext           TLS is not required there (STARTTLS is still used when offered)
//   …+unverified-tls      its TLS certificate is not checked (self-signed, expired, another name)
//
// e.g. `10.0.0.0/8,mail.internal:143+cleartext,legacy.example.com:993+unverified-tls`.
import ipaddr from "ipaddr.js";
import { canonical, type IpAddress, parseAddress } from "./address-ranges.ts";
import { normalizeHost, parseHostPort } from "./host-port.ts";

export interface TlsExceptions {
  /** The server may be reached without TLS. */
  cleartext: boolean;
  /** Its certificate is not verified. */
  unverifiedTls: boolean;
}

export type AllowEntry =
  | { kind: "network"; text: string; network: [IpAddress, number]; exceptions: TlsExceptions }
  | { kind: "server"; text: string; host: string; port: number; exceptions: TlsExceptions };

export const NO_EXCEPTIONS: TlsExceptions = { cleartext: false, unverifiedTls: false };

const MARKERS: Record<string, keyof TlsExceptions> = { cleartext: "cleartext", "unverified-tls": "unverifiedTls" };

export class AllowListError extends Error {
  override readonly name = "AllowListError";
}

/** Parses the whole list; an entry that is not understood is an error naming it. */
export function parseAllowedDestinations(value: string): AllowEntry[] {
  return value
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "")
    .map(parseEntry);
}

function parseEntry(text: string): AllowEntry {
  const [target = "", ...markers] = text.split("+");
  const exceptions = { ...NO_EXCEPTIONS };
  for (const marker of markers) {
    const field = MARKERS[marker.trim().toLowerCase()];
    if (field === undefined) throw new AllowListError(`"${text}": unknown marker "+${marker}" (known: +cleartext, +unverified-tls)`);
    exceptions[field] = true;
  }
  const bare = target.trim();
  if (bare.includes("/")) {
    if (!ipaddr.isValidCIDR(bare)) throw new AllowListError(`"${text}": not a network in CIDR notation`);
    const [address, bits] = ipaddr.parseCIDR(bare);
    return { kind: "network", text, network: networkOf(address, bits), exceptions };
  }
  const address = parseAddress(bare);
  if (address !== null && !bare.startsWith("[")) return { kind: "network", text, network: [address, address.kind() === "ipv4" ? 32 : 128], exceptions };
  const server = parseHostPort(bare);
  if (server === null) throw new AllowListError(`"${text}": not a network (10.0.0.0/8), an address, or a server (host:port)`);
  const serverAddress = parseAddress(server.host);
  const host = serverAddress === null ? normalizeHost(server.host) : serverAddress.toString();
  // A name as DNS spells it: no wildcards, no URLs.
  if (serverAddress === null && !/^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/.test(host))
    throw new AllowListError(`"${text}": "${server.host}" is not a host name (wildcards are not supported)`);
  return { kind: "server", text, host, port: server.port, exceptions };
}

/** `::ffff:10.0.0.0/104` is the IPv4 network 10.0.0.0/8: addresses are compared in their IPv4 form. */
function networkOf(address: IpAddress, bits: number): [IpAddress, number] {
  const plain = canonical(address);
  return plain === address ? [address, bits] : [plain, Math.max(0, bits - 96)];
}

/** Whether `address` (canonical form) is in the entry's network. */
export function inNetwork(address: IpAddress, entry: Extract<AllowEntry, { kind: "network" }>): boolean {
  const [network, bits] = entry.network;
  return network.kind() === address.kind() && address.match(network, bits);
}
