// Which servers a user (or a contact's address) may make the node reach, and how: the IMAP and SMTP
// servers of remote accounts, the Web Key Directory hosts of contacts' domains. Every connection asks
// check() first: the name is resolved once, every address it resolves to must be public or admitted by
// the operator's allow list, and the caller connects to those checked addresses only (never resolving
// the name again, so DNS rebinding cannot swap the address), keeping the name for TLS (SNI and the
// certificate check). The platform's own SMTP relay and NATS servers are refused whatever the allow
// list's networks say. Operator settings (the relay, the key server, the DNS resolver) do not go through
// here: they are trusted.
import { lookup } from "node:dns/promises";
import { rootCertificates } from "node:tls";
import { type IpAddress, nonPublicRange, parseAddress } from "./address-ranges.ts";
import { type AllowEntry, inNetwork, NO_EXCEPTIONS, type TlsExceptions } from "./allowed-destinations.ts";
import { formatHostPort, normalizeHost } from "./host-port.ts";

/** Resolves a host name to its addresses (the system's resolver, as any connect would, by default). */
export type Resolver = (host: string) => Promise<string[]>;

export interface DestinationSettings {
  /** CALIOPEN_ALLOWED_DESTINATIONS, parsed. */
  allow: AllowEntry[];
  /** PEM certificates of CAs trusted for user-supplied servers besides Node's own (CALIOPEN_DESTINATION_CA). */
  ca: string[];
  /** Name resolution; tests stand in their own. */
  resolve?: Resolver;
}

/** A server of the platform itself: never a user's destination. */
export interface ProtectedService {
  /** What it is, for the error message ("the platform's SMTP relay (CALIOPEN_SMTP_RELAY)"). */
  what: string;
  host: string;
  port: number;
}

export interface CheckedDestination {
  /** As given (without brackets), and the port. */
  host: string;
  port: number;
  /** The checked addresses, in the resolver's order (at least one): connect to these only. */
  addresses: [string, ...string[]];
  /** The name for SNI and the certificate check; undefined for an address literal. */
  servername: string | undefined;
  /** The operator's exceptions for this server (`+cleartext`, `+unverified-tls`). */
  exceptions: TlsExceptions;
  /** Node TLS options: the certificate is verified (unless excepted) against these CAs. */
  tls: { rejectUnauthorized: boolean; ca?: string[] };
}

/** The policy refuses this destination; the message says why and never depends on the server's answer. */
export class DestinationRefused extends Error {
  override readonly name = "DestinationRefused";
}

/** The name does not resolve (a WKD sub-domain that does not exist means "no key"). */
export class DestinationNotFound extends Error {
  override readonly name = "DestinationNotFound";
}

const ALLOW_SETTING = "CALIOPEN_ALLOWED_DESTINATIONS";
/** getaddrinfo has no deadline of its own. */
const RESOLVE_TIMEOUT_MS = 15_000;
/** How long the addresses of the platform's own servers are remembered. */
const PROTECTED_TTL_MS = 60_000;

const systemResolver: Resolver = async (host) => (await lookup(host, { all: true, verbatim: true })).map((entry) => entry.address);

type Verdict = { refused: string } | { exceptions: TlsExceptions };

export class DestinationPolicy {
  private readonly allow: AllowEntry[];
  private readonly resolve: Resolver;
  private readonly ca: string[] | undefined;
  private readonly protectedAddresses = new Map<string, { addresses: string[]; until: number }>();

  constructor(
    settings: Partial<DestinationSettings> = {},
    /** Read at every check: a NATS cluster's servers change. */
    private readonly protectedServices: () => ProtectedService[] = () => [],
  ) {
    this.allow = settings.allow ?? [];
    this.resolve = settings.resolve ?? systemResolver;
    // An explicit `ca` replaces Node's store: keep Node's roots beside the operator's.
    this.ca = settings.ca !== undefined && settings.ca.length > 0 ? [...rootCertificates, ...settings.ca] : undefined;
  }

  /**
   * Resolves `host` and checks every address it resolves to. `what` names the server in messages
   * ("IMAP server"). Throws DestinationRefused, DestinationNotFound, or an Error when DNS fails.
   */
  async check(host: string, port: number, what: string): Promise<CheckedDestination> {
    const name = normalizeHost(host);
    const shown = `${what} ${formatHostPort({ host: name, port })}`;
    // Legacy forms (`127.1`, `2130706433`) are addresses too, as getaddrinfo would read them.
    const literal = parseAddress(name);
    const addresses: [string, ...string[]] = literal !== null ? [literal.toString()] : await this.lookup(name, shown);
    await this.learnProtected();
    const verdict = this.verdict(name, port, addresses, literal !== null);
    if ("refused" in verdict) throw new DestinationRefused(`${shown} is not an allowed destination: ${verdict.refused}`);
    return {
      host: name,
      port,
      addresses,
      servername: literal === null ? name : undefined,
      exceptions: verdict.exceptions,
      tls: { rejectUnauthorized: !verdict.exceptions.unverifiedTls, ...(this.ca !== undefined && { ca: this.ca }) },
    };
  }

  /**
   * Without DNS (for the API, at once): why an address literal or a `localhost` name is refused, or null
   * when nothing can be said before resolving it at connect time.
   */
  refusalWithoutDns(host: string, port: number): string | null {
    const name = normalizeHost(host);
    const literal = parseAddress(name);
    const loopbackName = name === "localhost" || name.endsWith(".localhost");
    if (literal === null && !loopbackName) return null;
    const verdict = this.verdict(name, port, literal === null ? ["127.0.0.1", "::1"] : [literal.toString()], literal !== null);
    return "refused" in verdict ? verdict.refused : null;
  }

  private async lookup(name: string, shown: string): Promise<[string, ...string[]]> {
    try {
      const answer = await this.resolveInTime(name);
      const [first, ...rest] = answer.map((address) => parseAddress(address)?.toString()).filter((address): address is string => address !== undefined);
      if (first === undefined) throw new DestinationNotFound(`${shown}: ${name} has no address`);
      return [first, ...rest];
    } catch (err) {
      if (err instanceof DestinationNotFound) throw err;
      const code = (err as { code?: string }).code;
      if (code === "ENOTFOUND" || code === "ENODATA") throw new DestinationNotFound(`${shown}: no such host`);
      throw new Error(`${shown}: cannot resolve ${name}: ${(err as Error).message}`);
    }
  }

  private async resolveInTime(name: string): Promise<string[]> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>(
      (_, reject) => (timer = setTimeout(() => reject(new Error(`no DNS answer within ${RESOLVE_TIMEOUT_MS} ms`)), RESOLVE_TIMEOUT_MS)),
    );
    try {
      return await Promise.race([this.resolve(name), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Resolves the platform's own servers' names (remembered a minute), so that check() can compare addresses. */
  private async learnProtected(): Promise<void> {
    const now = Date.now();
    for (const service of this.protectedServices()) {
      const name = normalizeHost(service.host);
      if (parseAddress(name) !== null || (this.protectedAddresses.get(name)?.until ?? 0) > now) continue;
      const addresses = await this.resolveInTime(name).catch(() => []);
      this.protectedAddresses.set(name, { addresses: addresses.map((a) => parseAddress(a)?.toString() ?? a), until: now + PROTECTED_TTL_MS });
    }
  }

  private verdict(name: string, port: number, addresses: string[], literal: boolean): Verdict {
    const servers = this.allow.filter((entry): entry is Extract<AllowEntry, { kind: "server" }> => entry.kind === "server" && entry.port === port);
    const namedServer = servers.filter((entry) => entry.host === name || addresses.includes(entry.host));

    const platform = this.protectedServices().filter((service) => {
      const serviceName = normalizeHost(service.host);
      const serviceAddresses = this.addressesOf(serviceName);
      return serviceName === name || addresses.some((address) => serviceAddresses.includes(address));
    });
    const itself = platform.find((service) => service.port === port);
    if (itself !== undefined) return { refused: `it is ${itself.what}` };
    if (namedServer.length > 0)
      return {
        exceptions: merge(
          namedServer.map((entry) => entry.exceptions),
          "any",
        ),
      };

    const perAddress: TlsExceptions[] = [];
    for (const text of addresses) {
      const address = parseAddress(text) as IpAddress;
      const networks = this.allow.filter((entry): entry is Extract<AllowEntry, { kind: "network" }> => entry.kind === "network" && inNetwork(address, entry));
      if (networks.length > 0) {
        perAddress.push(
          merge(
            networks.map((entry) => entry.exceptions),
            "any",
          ),
        );
        continue;
      }
      const range = nonPublicRange(address);
      if (range !== null) {
        // A name's internal address is not shown: users must not map the platform's network through it.
        const what = literal ? `${name} is` : `${name} resolves to`;
        return { refused: `${what} ${range} (an operator may admit it in ${ALLOW_SETTING})` };
      }
      perAddress.push(NO_EXCEPTIONS);
    }
    // Other ports of the platform's own hosts (an MTA's submission port trusts its network too): only an
    // entry naming exactly this server admits them, never a network entry.
    const host = platform[0];
    if (host !== undefined) return { refused: `it is on the host of ${host.what}; only an entry naming this host:port in ${ALLOW_SETTING} admits it` };
    // Every address the name may lead to must allow what is excepted.
    return { exceptions: merge(perAddress, "all") };
  }

  private addressesOf(name: string): string[] {
    const literal = parseAddress(name);
    return literal !== null ? [literal.toString()] : (this.protectedAddresses.get(name)?.addresses ?? []);
  }
}

function merge(list: TlsExceptions[], how: "any" | "all"): TlsExceptions {
  const pick = (field: keyof TlsExceptions) => (how === "any" ? list.some((e) => e[field]) : list.length > 0 && list.every((e) => e[field]));
  return { cleartext: pick("cleartext"), unverifiedTls: pick("unverifiedTls") };
}
