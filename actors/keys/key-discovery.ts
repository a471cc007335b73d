// KeyAction `discover_key` (docs/decisions.md §4): for each email address of a contact, look for public keys on
// an HKP key server, in the address's Web Key Directory and (when configured) in DNS OPENPGPKEY records
// (RFC 7929); store the usable new ones on the contact, and save on the contact what was found, what was
// passed over and why, and which sources failed. A source that fails or times out does not stop the
// others.
//
// Decisions where the contract is silent:
// - Only email addresses are looked up (the original's keybase discoverer for social identities is not
//   carried over: keybase's API is gone).
// - A key is kept only when one of its user ids names the address looked up: a key server's search
//   matches words, not addresses, and a WKD must only serve keys of the address it is asked for.
// - Expired and revoked keys are dropped; so are keys the contact already has (by fingerprint) and keys
//   another source already gave in this run.
// - The stored key is labelled with the address it was found for; its key_id is the long key id (as
//   for uploaded keys), source "hkp" / "wkd" / "dns".
// - WKD: the advanced method (openpgpkey.<domain>) first, then the direct one whenever the advanced gave
//   no key. A 404, or a host that does not exist, is "no key"; anything else is an error, reported only
//   when neither method gave a key. Its hosts come from the contact's addresses: every request and every
//   redirect goes through the destination policy (no loopback, private or platform host unless the
//   operator admits it). The key server and the DNS resolver are the operator's: trusted.
// - Bounded, since a contact's addresses name any domain: at most `maxAddresses` addresses are looked
//   up (the others are reported as skipped), `concurrency` lookups run at once (and as many answers are
//   held), and an answer larger than its source's limit is an error — a WKD of a contact's domain gets
//   a smaller one than the operator's key server, which may hold keys with many signatures.

import { DestinationPolicy } from "../network/destination-policy.ts";
import { HttpFailure, httpRequest, keyServerUrl, MAX_ANSWER_BYTES } from "../network/http-request.ts";
import { Conflict } from "../store/errors.ts";
import type { Contact, KeyDiscoveryRecord, KeyDiscoverySource } from "../store/model.ts";
import type { Store } from "../store/store.ts";
import { lookupOpenPgpKeyRecords } from "./dns-openpgpkey.ts";
import { KeyParseError, parsePublicKeys } from "./parse-public-key.ts";
import { storedPublicKey } from "./stored-public-key.ts";
import { wkdAddress, wkdUrls } from "./wkd.ts";

/** Where to look (configuration of the node). */
export interface KeySources {
  /** An HKP key server's base URL (`http://127.0.0.1:11371`, `hkp://keys.example`, `hkps://…`); null: none. */
  hkp: string | null;
  /**
   * Whether to ask the address's Web Key Directory. `baseUrl` (for tests, which cannot own real domains)
   * maps the host a method would contact (`openpgpkey.<domain>` for the advanced method, `<domain>` for
   * the direct one) to the `scheme://host[:port]` to ask instead of `https://<host>`.
   */
  wkd: boolean | { baseUrl?: (domain: string) => string };
  /** DNS OPENPGPKEY (RFC 7929) through `resolver` (`host[:port]`, default the system's first name server); null: not asked. */
  dns: { resolver?: string } | null;
  /** Deadline of each request. */
  timeoutMs: number;
  /** Addresses of one contact looked up at most (CALIOPEN_KEY_DISCOVERY_MAX_ADDRESSES); the others are skipped. */
  maxAddresses?: number;
  /** Lookups (address × source) running at once (CALIOPEN_KEY_DISCOVERY_CONCURRENCY). */
  concurrency?: number;
  /** The largest answer read from each source (CALIOPEN_KEYSERVER_MAX_ANSWER, CALIOPEN_WKD_MAX_ANSWER). */
  maxAnswerBytes?: { hkp?: number; wkd?: number };
}

export const DEFAULT_DISCOVERY_LIMITS = {
  maxAddresses: 16,
  concurrency: 4,
  maxAnswerBytes: { hkp: MAX_ANSWER_BYTES, wkd: 512 * 1024 },
} as const;

export interface KeyDiscoveryOrder {
  contact_id: string;
  user_id: string;
}

/** What discovery did; also saved on the contact as `key_discovery`. */
export type DiscoveryReport = KeyDiscoveryRecord;

export interface DiscoveryOptions {
  now?: () => Date;
  /** Where WKD requests may go; the default policy (public addresses only) when not given. */
  destinations?: DestinationPolicy;
}

const DEFAULT_DESTINATIONS = new DestinationPolicy();

interface Answer {
  source: KeyDiscoverySource;
  address: string;
  /** The keys as served (armored text or binary), one entry per record/answer; empty: nothing there. */
  data: (string | Uint8Array)[];
  error: string | null;
}

export async function discoverKeys(store: Store, order: KeyDiscoveryOrder, sources: KeySources, options: DiscoveryOptions = {}): Promise<DiscoveryReport> {
  const now = options.now ?? (() => new Date());
  const contact = await store.contacts.get(order.user_id, order.contact_id);
  if (contact === null) throw new Error(`discover_key: user ${order.user_id} has no contact ${order.contact_id}`);
  const known = new Set((await store.keys.list(order.user_id, order.contact_id)).map((key) => key.fingerprint.toUpperCase()));
  const maxAddresses = sources.maxAddresses ?? DEFAULT_DISCOVERY_LIMITS.maxAddresses;
  const everyAddress = emailAddresses(contact);
  const addresses = everyAddress.slice(0, maxAddresses);
  const destinations = options.destinations ?? DEFAULT_DESTINATIONS;

  const report: DiscoveryReport = { at: now().toISOString(), found: [], skipped: [], errors: [] };
  for (const address of everyAddress.slice(maxAddresses)) {
    for (const source of askedSources(sources)) {
      report.skipped.push({
        source,
        address,
        reason: `not looked up: only the first ${maxAddresses} addresses of a contact are (CALIOPEN_KEY_DISCOVERY_MAX_ADDRESSES)`,
      });
    }
  }

  // The (address, source) lookups run a few at a time, and their answers are handled in a fixed order
  // (address, then hkp, wkd, dns) so that the report does not depend on which server answered first.
  const answers = inOrder(
    addresses.flatMap((address) => lookups(address, sources, destinations)),
    sources.concurrency ?? DEFAULT_DISCOVERY_LIMITS.concurrency,
  );
  const foundBy = new Map<string, KeyDiscoverySource>();
  for await (const answer of answers) {
    const { source, address } = answer;
    if (answer.error !== null) report.errors.push({ source, address, message: answer.error });
    for (const data of answer.data) {
      for (const parsed of await parsePublicKeys(data, now())) {
        if (parsed instanceof KeyParseError) {
          report.skipped.push({ source, address, reason: `malformed: ${parsed.message}` });
          continue;
        }
        const fingerprint = parsed.fingerprint;
        const skip = (reason: string) => report.skipped.push({ fingerprint, source, address, reason });
        if (known.has(fingerprint)) skip("already known for this contact");
        else if (foundBy.has(fingerprint)) skip(`already found through ${foundBy.get(fingerprint)} in this discovery`);
        else if (parsed.revoked) skip("revoked");
        else if (parsed.expired) skip(parsed.expire_date === null ? "expired (no valid self-signature)" : `expired on ${parsed.expire_date}`);
        else if (!parsed.emails.includes(address))
          skip(`its user ids name ${parsed.emails.length === 0 ? "no address" : parsed.emails.join(", ")}, not ${address}`);
        else {
          try {
            await store.keys.add(storedPublicKey(parsed, { user_id: order.user_id, resource_id: order.contact_id, label: address, source }, now()));
          } catch (err) {
            // Added meanwhile (the user uploaded it, or a concurrent discovery): known after all.
            if (!(err instanceof Conflict)) throw err;
            known.add(fingerprint);
            skip("already known for this contact");
            continue;
          }
          foundBy.set(fingerprint, source);
          report.found.push(fingerprint);
        }
      }
    }
  }

  const saved = await store.contacts.update(order.user_id, order.contact_id, (current) => ({ ...current, key_discovery: report }));
  if (saved === null) throw new Error(`discover_key: contact ${order.contact_id} of user ${order.user_id} was deleted while its keys were looked up`);
  return report;
}

function emailAddresses(contact: Contact): string[] {
  const addresses = contact.emails.map((email) => email.address.trim().toLowerCase()).filter((address) => wkdAddress(address) !== null);
  return [...new Set(addresses)];
}

/** The sources this configuration asks, in the report's order. */
function askedSources(sources: KeySources): KeyDiscoverySource[] {
  return [
    ...(sources.hkp !== null ? ["hkp" as const] : []),
    ...(sources.wkd !== false ? ["wkd" as const] : []),
    ...(sources.dns !== null ? ["dns" as const] : []),
  ];
}

/**
 * Runs the lookups at most `concurrency` at a time and yields their answers in the lookups' order: a
 * lookup starts only once the one `concurrency` places before it was handled, so no more answers than
 * that are held at once either.
 */
async function* inOrder(lookups: (() => Promise<Answer>)[], concurrency: number): AsyncIterable<Answer> {
  const started: (Promise<Answer> | null)[] = [];
  const width = Math.max(1, Math.floor(concurrency));
  for (let at = 0; at < lookups.length; at++) {
    while (started.length < Math.min(at + width, lookups.length)) started.push((lookups[started.length] as () => Promise<Answer>)());
    const answer = await (started[at] as Promise<Answer>);
    started[at] = null;
    yield answer;
  }
}

function lookups(address: string, sources: KeySources, destinations: DestinationPolicy): (() => Promise<Answer>)[] {
  const out: (() => Promise<Answer>)[] = [];
  const ask = (source: KeyDiscoverySource, lookup: () => Promise<(string | Uint8Array)[]>) =>
    out.push(() =>
      lookup().then(
        (data) => ({ source, address, data, error: null }),
        (err: unknown) => ({ source, address, data: [], error: (err as Error).message }),
      ),
    );
  const hkp = sources.hkp;
  const limits = { ...DEFAULT_DISCOVERY_LIMITS.maxAnswerBytes, ...sources.maxAnswerBytes };
  if (hkp !== null) ask("hkp", () => lookupHkp(hkp, address, sources.timeoutMs, limits.hkp));
  if (sources.wkd !== false) {
    const origin = sources.wkd === true ? undefined : sources.wkd.baseUrl;
    ask("wkd", () => lookupWkd(address, origin, sources.timeoutMs, limits.wkd, destinations));
  }
  const dns = sources.dns;
  if (dns !== null) ask("dns", () => lookupOpenPgpKeyRecords(address, { resolver: dns.resolver, timeoutMs: sources.timeoutMs }));
  return out;
}

/** HKP `op=get` (draft-shaw-openpgp-hkp): armored keys, 404 when there is none. */
async function lookupHkp(base: string, address: string, timeoutMs: number, maxBytes: number): Promise<string[]> {
  const url = `${keyServerUrl(base)}/pks/lookup?op=get&options=mr&search=${encodeURIComponent(address)}`;
  const answer = await httpRequest(url, { timeoutMs, maxBytes });
  if (answer.status === 404) return [];
  if (answer.status !== 200) throw new HttpFailure(`${keyServerUrl(base)}/pks/lookup: HTTP ${answer.status}`);
  const text = new TextDecoder().decode(answer.bytes);
  // Some servers answer 200 with an HTML page for "no results".
  if (!text.includes("-----BEGIN PGP PUBLIC KEY BLOCK-----")) return /no (results|keys) found/i.test(text) ? [] : [text];
  return [text];
}

/** WKD: binary keys at the advanced URL, else at the direct one. */
async function lookupWkd(
  address: string,
  origin: ((host: string) => string) | undefined,
  timeoutMs: number,
  maxBytes: number,
  destinations: DestinationPolicy,
): Promise<Uint8Array[]> {
  const parts = wkdAddress(address);
  if (parts === null) return [];
  const urls = wkdUrls(parts, origin);
  const failures: string[] = [];
  for (const [method, url] of [
    ["advanced", urls.advanced],
    ["direct", urls.direct],
  ] as const) {
    try {
      const answer = await httpRequest(url, { timeoutMs, maxBytes, destinations });
      if (answer.status === 200 && answer.bytes.length > 0) return [answer.bytes];
      if (answer.status !== 404 && answer.status !== 200) failures.push(`${method} method: ${url.replace(/\?.*$/, "")}: HTTP ${answer.status}`);
    } catch (err) {
      if (err instanceof HttpFailure && err.hostNotFound) continue;
      failures.push(`${method} method: ${(err as Error).message}`);
    }
  }
  if (failures.length > 0) throw new Error(failures.join("; "));
  return [];
}
