// The `lookup` of a connection to a checked destination: it answers with the addresses the policy
// checked and never asks DNS again, so a name cannot resolve to a checked address for the policy and to
// another one for the connection (DNS rebinding). The name itself still reaches TLS for SNI and the
// certificate check.
import { isIPv6, type LookupFunction } from "node:net";
import type { CheckedDestination } from "./destination-policy.ts";

export function pinnedLookup(destination: Pick<CheckedDestination, "addresses">): LookupFunction {
  return (_hostname, options, callback) => {
    const family = options.family === "IPv4" ? 4 : options.family === "IPv6" ? 6 : (options.family ?? 0);
    const wanted = destination.addresses
      .map((address) => ({ address, family: isIPv6(address) ? 6 : 4 }))
      .filter((entry) => family === 0 || family === entry.family);
    const first = wanted[0];
    if (first === undefined) {
      const error = Object.assign(new Error(`no checked IPv${family} address`), { code: "ENOTFOUND" });
      return void process.nextTick(() => callback(error, ""));
    }
    if (options.all === true) return void process.nextTick(() => callback(null, wanted));
    process.nextTick(() => callback(null, first.address, first.family));
  };
}
