// The secrets sealed inside a bucket's documents (identities' credentials, users' private keys), as a
// key rotation sees them: sealed again under the sealing key, each document by compare-and-swap (safe
// to run while nodes work, and to run again), and counted by the key id and format that sealed them
// (key ids only: no key is needed to count).
import type { KvDocuments } from "../../runtime/kv-documents.ts";
import { type SealedSecret, type SecretBox, SecretNotOpened } from "../../runtime/secret-box.ts";

/** What a reseal did, document by document. */
export interface ResealReport {
  /** Sealed again under the sealing key, in the current format. */
  resealed: number;
  /** Already sealed that way. */
  current: number;
  /** Not opened by any of the keys given, by the key id they name. */
  unopenable: Record<string, number>;
}

/** How many secrets are sealed under one key id, in one format (1: before sealed secrets were bound to their document). */
export interface SealedCount {
  kid: string;
  format: number;
  count: number;
}

/** Where a document's sealed secret is: the secret and what it is bound to (null: the document holds none). */
export interface SealedField<T> {
  sealedOf(doc: T): { sealed: SealedSecret; aad: string } | null;
  withSealed(doc: T, sealed: SealedSecret): T;
}

export async function resealEvery<T>(docs: KvDocuments<T>, box: SecretBox, field: SealedField<T>): Promise<ResealReport> {
  const report: ResealReport = { resealed: 0, current: 0, unopenable: {} };
  for (const key of await docs.keys()) {
    // Set by the last run of the change (a lost compare-and-swap runs it again on a fresh read).
    const seen: { outcome: "resealed" | "current" | "none" | { unopenable: string } } = { outcome: "none" };
    await docs.update(key, (current) => {
      seen.outcome = "none";
      const found = field.sealedOf(current);
      if (found === null) return null;
      if (box.isCurrent(found.sealed)) {
        seen.outcome = "current";
        return null;
      }
      let plaintext: string;
      try {
        plaintext = box.open(found.sealed, found.aad);
      } catch (err) {
        if (!(err instanceof SecretNotOpened)) throw err;
        seen.outcome = { unopenable: found.sealed.kid };
        return null;
      }
      seen.outcome = "resealed";
      return field.withSealed(current, box.seal(plaintext, found.aad));
    });
    const outcome = seen.outcome;
    if (outcome === "resealed" || outcome === "current") report[outcome] += 1;
    else if (outcome !== "none") report.unopenable[outcome.unopenable] = (report.unopenable[outcome.unopenable] ?? 0) + 1;
  }
  return report;
}

export async function countSealed<T>(docs: KvDocuments<T>, sealedOf: (doc: T) => SealedSecret | null | undefined): Promise<SealedCount[]> {
  const counts = new Map<string, SealedCount>();
  for (const doc of await docs.values()) {
    const sealed = sealedOf(doc);
    if (sealed == null) continue;
    const format = sealed.v ?? 1;
    const entry = counts.get(`${sealed.kid}/${format}`) ?? { kid: sealed.kid, format, count: 0 };
    entry.count += 1;
    counts.set(`${sealed.kid}/${format}`, entry);
  }
  return [...counts.values()].sort((a, b) => b.count - a.count || a.kid.localeCompare(b.kid) || a.format - b.format);
}
