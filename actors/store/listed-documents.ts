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
  constructor(
    readonly docs: KvDocuments<T>,
    private readonly placeOf: (document: T) => Place,
  ) {}

  async create(key: string, document: T): Promise<void> {
    const place = this.placeOf(document);
    const putAt = Date.now();
    await place.index.insert([[...place.position, putAt]]);
    try {
      await this.docs.create(key, document);
    } catch (err) {
      const existing = err instanceof DocumentExists ? await this.docs.get(key).catch(() => undefined) : null;
      // The entry goes, unless it is also that of the document stored under this key before.
      if (existing !== undefined && (existing === null || !samePlace(this.placeOf(existing.value), place))) await dropPlaces([place], null);
      throw err;
    }
    await reassertIfSlow(place, putAt);
  }

  /**
   * Changes a document by compare-and-swap (`change` returns the new one, or null for no change); a change
   * of its place puts the new entry before the write and takes the old one away after. Resolves to the
   * version replaced and the one stored (both null when there is no such document).
   */
  async update(key: string, change: (current: T) => T | null): Promise<{ before: T | null; after: T | null }> {
    const tried: Place[] = [];
    let current: Versioned<T> | null = await this.docs.get(key);
    let done = false;
    let putAt = Date.now();
    try {
      for (let attempt = 0; attempt < UPDATE_ATTEMPTS; attempt++) {
        if (current === null) return { before: null, after: null };
        const known: Versioned<T> = current;
        const next = change(known.value);
        const from = this.placeOf(known.value);
        if (next === null) {
          await dropPlaces(tried, from);
          done = true;
          return { before: known.value, after: known.value };
        }
        const to = this.placeOf(next);
        const moves = !samePlace(from, to);
        if (moves && !tried.some((place) => samePlace(place, to))) {
          putAt = Date.now();
          await to.index.insert([[...to.position, putAt]]);
          tried.push(to);
        }
        const result = await this.docs.updateFrom(key, known, (value) => (value === known.value ? next : null));
        if (result !== null && result.value === next) {
          if (moves) await reassertIfSlow(to, putAt);
          await dropPlaces([...(moves ? [from] : []), ...tried], to);
          done = true;
          return { before: known.value, after: next };
        }
        current = result;
      }
      throw new DocumentContention(`${this.docs.bucket}/${key} kept changing under ${UPDATE_ATTEMPTS} attempts to update it`);
    } finally {
      if (!done && tried.length > 0) {
        // Entries put for a write that did not happen go, but not the one the stored document is at.
        const stored = await this.docs.get(key).catch(() => undefined);
        if (stored !== undefined) await dropPlaces(tried, stored === null ? null : this.placeOf(stored.value));
      }
    }
  }

  /** Removes the document, then its entry; a missing one is fine. */
  async delete(key: string): Promise<void> {
    const stored = await this.docs.get(key);
    await this.docs.delete(key);
    if (stored !== null) await dropPlaces([this.placeOf(stored.value)], null);
  }
}

/**
 * A write that took longer than half the grace readers give an entry without its document may have seen
 * its entry removed as a leftover meanwhile: put again (idempotent), it is there for the document written.
 */
async function reassertIfSlow(place: Place, putAt: number): Promise<void> {
  if (Date.now() - putAt > ENTRY_GRACE_MS / 2) await place.index.insert([[...place.position, Date.now()]]);
}

export const samePlace = (a: Place, b: Place) => a.index.tree === b.index.tree && a.index.order(a.position, b.position) === 0;

/** Takes away the entries at these places, except `kept` (best effort: a reader removes what is left). */
async function dropPlaces(places: Place[], kept: Place | null): Promise<void> {
  const gone = places.filter((place, at) => (kept === null || !samePlace(place, kept)) && places.findIndex((other) => samePlace(other, place)) === at);
  await Promise.all(gone.map((place) => place.index.remove([place.position]).catch(() => undefined)));
}
