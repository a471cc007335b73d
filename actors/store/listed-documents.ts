// Documents kept with an entry in a sorted index (see sorted-index.ts), in an order that never shows a
// phantom nor loses one: the entry is put before the document is written and taken away after it is
// gone or moved, so each stored document has an entry it confirms; an entry without a document is a write
// in flight or what a crash left, which readers pass over (listing-page.ts).
import { DocumentContention, DocumentExists, type KvDocuments, type Versioned } from "../../runtime/kv-documents.ts";
import { ENTRY_GRACE_MS } from "./listing-page.ts";
import type { Position, SortedIndex } from "./sorted-index.ts";

export interface Place {
  index: SortedIndex;
  position: Position;
}

const UPDATE_ATTEMPTS = 20;

export class ListedDocuments<T> {
  private readonly placesOf: (document: T) => Place[];

  /** `placeOf`: the index entries a document has, one or several (one per listing it is in). */
  constructor(
    readonly docs: KvDocuments<T>,
    placeOf: (document: T) => Place | Place[],
  ) {
    this.placesOf = (document) => {
      const places = placeOf(document);
      return Array.isArray(places) ? places : [places];
    };
  }

  async create(key: string, document: T): Promise<void> {
    const places = this.placesOf(document);
    const putAt = Date.now();
    await insertAll(places, putAt);
    try {
      await this.docs.create(key, document);
    } catch (err) {
      const existing = err instanceof DocumentExists ? await this.docs.get(key).catch(() => undefined) : null;
      // The entries go, unless they are also those of the document stored under this key before.
      if (existing !== undefined) await dropPlaces(places, existing === null ? [] : this.placesOf(existing.value));
      throw err;
    }
    await reassertIfSlow(places, putAt);
  }

  /**
   * Changes a document by compare-and-swap (`change` returns the new one, or null for no change); a change
   * of its places puts the new entries before the write and takes the old ones away after. Resolves to
   * the version replaced and the one stored (both null when there is no such document). `beforeWrite`
   * runs before each try of a write (after the new entries are put), for what must be there first.
   */
  async update(
    key: string,
    change: (current: T) => T | null,
    beforeWrite?: (before: T, next: T) => Promise<void>,
  ): Promise<{ before: T | null; after: T | null }> {
    const tried: Place[] = [];
    let current: Versioned<T> | null = await this.docs.get(key);
    let done = false;
    let putAt = Date.now();
    try {
      for (let attempt = 0; attempt < UPDATE_ATTEMPTS; attempt++) {
        if (current === null) return { before: null, after: null };
        const known: Versioned<T> = current;
        const next = change(known.value);
        const from = this.placesOf(known.value);
        if (next === null) {
          await dropPlaces(tried, from);
          done = true;
          return { before: known.value, after: known.value };
        }
        const to = this.placesOf(next);
        const added = to.filter((place) => !from.some((old) => samePlace(old, place)));
        const fresh = added.filter((place) => !tried.some((done) => samePlace(done, place)));
        if (fresh.length > 0) {
          putAt = Date.now();
          await insertAll(fresh, putAt);
          tried.push(...fresh);
        }
        await beforeWrite?.(known.value, next);
        const result = await this.docs.updateFrom(key, known, (value) => (value === known.value ? next : null));
        if (result !== null && result.value === next) {
          await reassertIfSlow(added, putAt);
          await dropPlaces([...from, ...tried], to);
          done = true;
          return { before: known.value, after: next };
        }
        current = result;
      }
      throw new DocumentContention(`${this.docs.bucket}/${key} kept changing under ${UPDATE_ATTEMPTS} attempts to update it`);
    } finally {
      if (!done && tried.length > 0) {
        // Entries put for a write that did not happen go, but not those the stored document is at.
        const stored = await this.docs.get(key).catch(() => undefined);
        if (stored !== undefined) await dropPlaces(tried, stored === null ? [] : this.placesOf(stored.value));
      }
    }
  }

  /** Removes the document, then its entries; a missing one is fine. */
  async delete(key: string): Promise<void> {
    const stored = await this.docs.get(key);
    await this.docs.delete(key);
    if (stored !== null) await dropPlaces(this.placesOf(stored.value), []);
  }
}

async function insertAll(places: Place[], at: number): Promise<void> {
  await Promise.all(places.map((place) => place.index.insert([[...place.position, at]])));
}

/**
 * A write that took longer than half the grace readers give an entry without its document may have seen
 * its entries removed as leftovers meanwhile: put again (idempotent), they are there for the document written.
 */
async function reassertIfSlow(places: Place[], putAt: number): Promise<void> {
  if (places.length > 0 && Date.now() - putAt > ENTRY_GRACE_MS / 2) await insertAll(places, Date.now());
}

export const samePlace = (a: Place, b: Place) => a.index.tree === b.index.tree && a.index.order(a.position, b.position) === 0;

/** Takes away the entries at these places, except those `kept` (best effort: a reader removes what is left). */
async function dropPlaces(places: Place[], kept: Place[]): Promise<void> {
  const gone = places.filter((place, at) => !kept.some((keep) => samePlace(place, keep)) && places.findIndex((other) => samePlace(other, place)) === at);
  await Promise.all(gone.map((place) => place.index.remove([place.position]).catch(() => undefined)));
}
