// The names of the OpenPGP Web Key Directory (draft-koch-openpgp-webkey-service): where the key of an
// address is served, and where it lies in a WKD tree on disk. Used by discovery (to fetch) and by
// publishing (to write); the hash is the one `gpg-wks-client --print-wkd-hash` prints.
import { createHash } from "node:crypto";

const ZBASE32 = "ybndrfg8ejkmcpqxot1uwisza345h769";

/** z-base-32 (the human-oriented base-32 encoding the WKD uses), most significant bits first. */
export function zbase32(bytes: Uint8Array): string {
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ZBASE32[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  if (bits > 0) out += ZBASE32[(buffer << (5 - bits)) & 31];
  return out;
}

export interface WkdAddress {
  /** The local part as written (the `l=` parameter). */
  localPart: string;
  /** The domain, lower-cased. */
  domain: string;
  /** z-base-32 of the SHA-1 of the local part with its ASCII letters lower-cased. */
  hash: string;
}

/** Splits an address into what the WKD names are made of; null for what is not `local@domain`. */
export function wkdAddress(address: string): WkdAddress | null {
  const trimmed = address.trim();
  const at = trimmed.lastIndexOf("@");
  if (at <= 0 || at === trimmed.length - 1) return null;
  const localPart = trimmed.slice(0, at);
  const domain = trimmed.slice(at + 1).toLowerCase();
  if (!/^[a-z0-9.-]+$/.test(domain) || domain.startsWith(".") || domain.endsWith(".")) return null;
  const folded = localPart.replace(/[A-Z]/g, (c) => c.toLowerCase());
  return { localPart, domain, hash: zbase32(createHash("sha1").update(folded, "utf8").digest()) };
}

/** The two URLs of an address's key, advanced method first; `origin` maps a host to `scheme://host[:port]`. */
export function wkdUrls(address: WkdAddress, origin: (host: string) => string = (host) => `https://${host}`): { advanced: string; direct: string } {
  const query = `?l=${encodeURIComponent(address.localPart)}`;
  return {
    advanced: `${origin(`openpgpkey.${address.domain}`)}/.well-known/openpgpkey/${address.domain}/hu/${address.hash}${query}`,
    direct: `${origin(address.domain)}/.well-known/openpgpkey/hu/${address.hash}${query}`,
  };
}

/**
 * Where an address's key lies in a WKD tree whose top (`root`) is served as the web root of
 * `openpgpkey.<domain>` (advanced method): `<root>/.well-known/openpgpkey/<domain>/hu/<hash>`, beside the
 * domain's `policy` file. Below `<root>/.well-known/openpgpkey` this is exactly the layout
 * `gpg-wks-client --install-key --directory <root>/.well-known/openpgpkey` makes.
 */
export function wkdFiles(root: string, address: WkdAddress): { domainDir: string; keyFile: string; policyFile: string } {
  const domainDir = `${root.replace(/\/+$/, "")}/.well-known/openpgpkey/${address.domain}`;
  return { domainDir, keyFile: `${domainDir}/hu/${address.hash}`, policyFile: `${domainDir}/policy` };
}
