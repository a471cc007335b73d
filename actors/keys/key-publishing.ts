// KeyAction `publish_key` / `delete_key` (docs/decisions.md §4, emitted by the API when a public key is added
// to or removed from a contact): publish the user's own key on the configured HKP key server and in the
// platform's Web Key Directory, or withdraw it from there.
//
// Decisions where the contract is silent:
// - Only the user's own keys are published: keys on the user's own contact card (`user.contact_id`).
//   A key the user keeps for someone else's contact is theirs to publish, not ours: it is left alone
//   (the report says so; this is not a failure).
// - The WKD gets a key only for the addresses the platform hosts (`wkd.domains`) that are the user's own
//   local identities: a user cannot make the platform's WKD serve a key for someone else's address by
//   putting it in a user id. An address's file holds the key reduced to that address's user ids, like
//   `gpg-wks-client --install-key` writes it; publishing replaces what was there (the latest wins).
//   Expired or revoked keys are not put in the WKD (it serves keys to encrypt to); they still go to
//   the key server, which keeps every key's history.
// - Withdrawing: HKP has no standard way to delete a key, and public key servers keep every key they
//   were given (and share it with their peers): the key is NOT removed from the key server, and the
//   report says so. A user who wants a key out of use publishes its revocation. In the WKD, the file of
//   each of the user's hosted addresses that holds this key is removed, or replaced by another of the
//   user's own usable keys for that address when there is one.
// - Failures (key server unreachable or refusing, WKD not writable) throw, for a retry or a dead letter;
//   the WKD is written before the key server is asked, and writing it again is harmless.
import { randomBytes } from "node:crypto";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { type PublicKey as OpenPgpKey, readKey } from "openpgp";
import { HttpFailure, httpRequest, keyServerUrl } from "../network/http-request.ts";
import type { PublicKey, User } from "../store/model.ts";
import type { Store } from "../store/store.ts";
import { parsePublicKey, parsePublicKeys } from "./parse-public-key.ts";
import { wkdAddress, wkdFiles } from "./wkd.ts";

export interface KeyPublishTarget {
  /** The HKP key server to upload to (`http://…`, `hkp://…`, `hkps://…`); null: none. */
  hkp: string | null;
  /**
   * The platform's Web Key Directory: `dir` is the web root served for `openpgpkey.<domain>` (and
   * `<domain>`'s `/.well-known/openpgpkey/`), `domains` the mail domains it speaks for. Null: none.
   */
  wkd: { dir: string; domains: string[] } | null;
}

export interface KeyOrder {
  key_id: string;
  resource_id: string;
  user_id: string;
}

export interface KeyPublishOptions {
  timeoutMs?: number;
  now?: () => Date;
}

export interface PublishReport {
  /** Whether the key was uploaded to the key server. */
  hkp: boolean;
  /** WKD files written (or, for a withdrawal, removed or replaced), by address. */
  wkd: { address: string; file: string; action: "written" | "removed" | "replaced" }[];
  /** What was deliberately not done, and why. */
  notes: string[];
}

const DEFAULT_TIMEOUT_MS = 10_000;

export async function publishKey(store: Store, order: KeyOrder, target: KeyPublishTarget, options: KeyPublishOptions = {}): Promise<PublishReport> {
  const now = options.now ?? (() => new Date());
  const report: PublishReport = { hkp: false, wkd: [], notes: [] };
  const user = await userOf(store, order, "publish_key");
  const keyId = order.key_id.toUpperCase();
  const key = await store.keys.get(order.user_id, order.resource_id, keyId);
  if (key === null) throw new Error(`publish_key: user ${order.user_id} has no key ${keyId} on contact ${order.resource_id} (deleted since?)`);
  if (order.resource_id !== user.contact_id) {
    report.notes.push(`key ${keyId} is on contact ${order.resource_id}, not on the user's own contact card: only a user's own keys are published`);
    return report;
  }

  if (target.wkd !== null) {
    const parsed = await parsePublicKey(key.armored, now());
    if (parsed.revoked || parsed.expired) {
      report.notes.push(`key ${keyId} is ${parsed.revoked ? "revoked" : "expired"}: not put in the Web Key Directory`);
    } else {
      const owned = await ownedAddresses(store, user);
      for (const address of parsed.emails) {
        const parts = wkdAddress(address);
        if (parts === null || !hosted(target.wkd, parts.domain)) continue;
        if (!owned.has(address)) {
          report.notes.push(`${address} is not one of the user's own addresses on this platform: not put in the Web Key Directory`);
          continue;
        }
        const files = wkdFiles(target.wkd.dir, parts);
        await writeWkd(files, parts.domain, await keyFor(key.armored, address));
        report.wkd.push({ address, file: files.keyFile, action: "written" });
      }
    }
  }

  if (target.hkp !== null) {
    const base = keyServerUrl(target.hkp);
    const answer = await httpRequest(`${base}/pks/add`, {
      method: "POST",
      timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ keytext: key.armored }).toString(),
      maxBytes: 64 * 1024,
    }).catch((err: unknown) => {
      throw new Error(`publish_key: uploading ${keyId} to ${base} failed: ${(err as Error).message}`);
    });
    if (answer.status < 200 || answer.status >= 300) {
      const text = new TextDecoder()
        .decode(answer.bytes)
        .replace(/<[^>]*>/g, " ")
        .replace(/\s+/g, " ")
        .trim()
        .slice(0, 200);
      throw new HttpFailure(`publish_key: the key server ${base} refused ${keyId}: HTTP ${answer.status}${text === "" ? "" : ` (${text})`}`);
    }
    report.hkp = true;
  }
  return report;
}

export async function withdrawKey(store: Store, order: KeyOrder, target: KeyPublishTarget, options: KeyPublishOptions = {}): Promise<PublishReport> {
  const now = options.now ?? (() => new Date());
  const report: PublishReport = { hkp: false, wkd: [], notes: [] };
  const user = await userOf(store, order, "delete_key");
  const keyId = order.key_id.toUpperCase();
  if (order.resource_id !== user.contact_id) {
    report.notes.push(`key ${keyId} was on contact ${order.resource_id}, not on the user's own contact card: it was never published`);
    return report;
  }
  if (target.hkp !== null) {
    report.notes.push(`HKP has no standard way to delete a key: ${keyServerUrl(target.hkp)} keeps ${keyId} (publish its revocation to take it out of use)`);
  }
  if (target.wkd === null) return report;

  const remaining = (await store.keys.list(order.user_id, user.contact_id)).filter((key) => key.key_id.toUpperCase() !== keyId);
  for (const address of await ownedAddresses(store, user, true)) {
    const parts = wkdAddress(address);
    if (parts === null || !hosted(target.wkd, parts.domain)) continue;
    const files = wkdFiles(target.wkd.dir, parts);
    let bytes: Buffer;
    try {
      bytes = await readFile(files.keyFile);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw new Error(`delete_key: cannot read the WKD file ${files.keyFile}: ${(err as Error).message}`);
    }
    const held = await parsePublicKeys(bytes, now());
    if (!held.some((key) => !(key instanceof Error) && key.key_id === keyId)) continue;
    const replacement = await newestUsableKeyFor(remaining, address, now());
    try {
      if (replacement === null) {
        await rm(files.keyFile, { force: true });
        report.wkd.push({ address, file: files.keyFile, action: "removed" });
      } else {
        await writeWkd(files, parts.domain, await keyFor(replacement.armored, address));
        report.wkd.push({ address, file: files.keyFile, action: "replaced" });
      }
    } catch (err) {
      throw new Error(`delete_key: cannot change the WKD file ${files.keyFile}: ${(err as Error).message}`);
    }
  }
  return report;
}

async function userOf(store: Store, order: KeyOrder, what: string): Promise<User> {
  const user = await store.users.get(order.user_id);
  if (user === null) throw new Error(`${what}: no user ${order.user_id}`);
  return user;
}

/** The user's addresses on this platform: their local email identities (deleted ones too, to withdraw). */
async function ownedAddresses(store: Store, user: User, includeDeleted = false): Promise<Set<string>> {
  const identities = await store.identities.list(user.user_id, { type: "local", includeDeleted });
  return new Set(
    identities
      .filter((identity) => identity.protocol === "email" && (includeDeleted || identity.status === "active"))
      .map((identity) => identity.identifier.trim().toLowerCase()),
  );
}

const hosted = (wkd: { domains: string[] }, domain: string) => wkd.domains.some((hostedDomain) => hostedDomain.trim().toLowerCase() === domain);

async function newestUsableKeyFor(keys: PublicKey[], address: string, now: Date): Promise<PublicKey | null> {
  for (const key of [...keys].reverse()) {
    const parsed = await parsePublicKey(key.armored, now).catch(() => null);
    if (parsed !== null && !parsed.revoked && !parsed.expired && parsed.emails.includes(address)) return key;
  }
  return null;
}

/**
 * The key as a WKD serves it for one address: binary, only the user ids naming that address (with
 * their self-signatures; certifications by other keys dropped), every subkey.
 */
export async function keyFor(armored: string, address: string): Promise<Uint8Array> {
  // A key of our own, read for this: changing its users changes nothing else.
  const reduced = (await readKey({ armoredKey: armored })) as OpenPgpKey;
  reduced.users = reduced.users.filter((user) => user.userID !== null && emailOf(user.userID.userID) === address);
  for (const user of reduced.users) user.otherCertifications = [];
  if (reduced.users.length === 0) throw new Error(`key ${reduced.getFingerprint().toUpperCase()} has no user id for ${address}`);
  return reduced.write();
}

function emailOf(userId: string): string {
  return (/<([^>]+)>/.exec(userId)?.[1] ?? userId).trim().toLowerCase();
}

/** Writes the key file (atomically: a reader sees the old file or the new one) and the domain's policy file. */
async function writeWkd(files: { keyFile: string; policyFile: string }, domain: string, bytes: Uint8Array): Promise<void> {
  try {
    await mkdir(dirname(files.keyFile), { recursive: true, mode: 0o755 });
    // gpg-wks-client writes this same (empty) policy: no flags.
    await writeFile(files.policyFile, `# Policy flags for domain ${domain}\n`, { flag: "wx", mode: 0o644 }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "EEXIST") throw err;
    });
    const temporary = `${files.keyFile}.${randomBytes(6).toString("hex")}.tmp`;
    await writeFile(temporary, bytes, { mode: 0o644 });
    await rename(temporary, files.keyFile);
  } catch (err) {
    throw new Error(`cannot write the WKD file ${files.keyFile}: ${(err as Error).message}`);
  }
}
