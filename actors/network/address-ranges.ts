// Which IP addresses are not the public Internet: loopback, private, link-local, CGNAT, multicast,
// unspecified, reserved… A server a user names must not resolve to one of them unless the operator
// admits it. The ranges come from ipaddr.js (IPv4, IPv6, IPv4-mapped IPv6); only the addresses that
// embed an IPv4 address (NAT64, 6to4) are looked into here, so that `64:ff9b::7f00:1` is loopback too.
import ipaddr from "ipaddr.js";

export type IpAddress = ipaddr.IPv4 | ipaddr.IPv6;

/** What each non-public range is, in words for an error message. */
const RANGE_NAMES: Record<string, string> = {
  unspecified: "the unspecified address",
  broadcast: "the broadcast address",
  multicast: "a multicast address",
  linkLocal: "a link-local address",
  loopback: "a loopback address",
  carrierGradeNat: "a carrier-grade NAT (CGNAT) address",
  private: "a private address",
  uniqueLocal: "a unique local (private) IPv6 address",
  deprecatedSiteLocal: "a site-local (private) IPv6 address",
  reserved: "a reserved address",
  benchmarking: "a benchmarking address",
  as112: "an AS112 address",
  as112v6: "an AS112 address",
  amt: "an AMT relay address",
  discard: "a discard-only address",
  rfc6145: "an IPv4-translated address",
  teredo: "a Teredo tunnel address",
  orchid2: "an ORCHID address",
  deprecatedOrchid: "an ORCHID address",
  droneRemoteIdProtocolEntityTags: "a non-routable DRIP address",
};

/** IPv4-compatible IPv6 (`::a.b.c.d`, deprecated by RFC 4291): ipaddr.js calls it unicast. */
const IPV4_COMPATIBLE = ipaddr.parseCIDR("::/96");
/** The well-known NAT64 prefix (RFC 6052): the IPv4 address is the last 32 bits. */
const NAT64 = ipaddr.parseCIDR("64:ff9b::/96");

/** An address as written in DNS answers and URLs, or null when it is not one (legacy forms such as `127.1` included). */
export function parseAddress(text: string): IpAddress | null {
  const bare = text.replace(/^\[(.*)\]$/, "$1");
  if (!ipaddr.isValid(bare)) return null;
  return canonical(ipaddr.parse(bare));
}

/** IPv4-mapped IPv6 (`::ffff:127.0.0.1`) is the IPv4 address it maps: compared and classified as such. */
export function canonical(address: IpAddress): IpAddress {
  return address.kind() === "ipv6" && (address as ipaddr.IPv6).isIPv4MappedAddress() ? (address as ipaddr.IPv6).toIPv4Address() : address;
}

/** Null for a public unicast address; otherwise what it is ("a loopback address"). */
export function nonPublicRange(address: IpAddress): string | null {
  const plain = canonical(address);
  if (plain.kind() === "ipv4") {
    const range = plain.range();
    return range === "unicast" ? null : (RANGE_NAMES[range] ?? `a special-purpose address (${range})`);
  }
  const v6 = plain as ipaddr.IPv6;
  const embedded = embeddedIpv4(v6);
  if (embedded !== null) {
    const inner = nonPublicRange(embedded.address);
    return inner === null ? null : `${inner} (embedded in a ${embedded.how} address)`;
  }
  const range = v6.range();
  if (range !== "unicast") return RANGE_NAMES[range] ?? `a special-purpose address (${range})`;
  return v6.match(IPV4_COMPATIBLE) ? "an IPv4-compatible IPv6 address (deprecated)" : null;
}

/** The IPv4 address carried by a NAT64 (64:ff9b::/96) or 6to4 (2002::/16) address, else null. */
function embeddedIpv4(address: ipaddr.IPv6): { address: ipaddr.IPv4; how: string } | null {
  const parts = address.parts;
  const octets = (high: number, low: number) => new ipaddr.IPv4([high >> 8, high & 0xff, low >> 8, low & 0xff]);
  if (address.match(NAT64)) return { address: octets(parts[6] ?? 0, parts[7] ?? 0), how: "NAT64" };
  if (address.range() === "6to4") return { address: octets(parts[1] ?? 0, parts[2] ?? 0), how: "6to4" };
  return null;
}
