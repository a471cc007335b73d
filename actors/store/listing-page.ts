// Reads one page of a listing from sorted indexes (several merged, e.g. drafts and mail): takes entries in
// order, reads their documents and keeps those the document confirms. An entry is a claim, the document
// the truth: writers put an entry before the document and take it away after, so an entry whose document
// is missing or placed elsewhere is a write in flight or what a crash left, never shown. Left long enough
// (ENTRY_GRACE_MS), it is removed by the reader that meets it.
import { type IndexEntry, type Position, positionOf, SortedIndex } from "./sorted-index.ts";

/** An entry younger than this whose document does not confirm it may be a write in flight: left alone. */
export const ENTRY_GRACE_MS = 60_000;

export interface ListingSource<T> {
  indexes: SortedIndex[];
  /** Reads a listed object by id (null when it is gone). */
  load(id: string): Promise<T | null>;
  /** Where the object belongs: which index (its tree) and what position. */
  placeOf(item: T): { tree: string; position: Position };
  /** A further filter on the documents (pages then may read past many entries). */
  keep?(item: T): boolean;
}

export interface PageWindow {
  /** Entries to pass over before the page (read, not checked: deep offsets cost what they skip). */
  offset: number;
  limit: number;
  /** The page starts after this position (a cursor). */
  after: Position | null;
}

export interface ListedPage<T> {
  items: T[];
  /** The count kept by the indexes (see SortedIndex.count), or more when the page shows more. */
  total: number;
  /** Where the next page starts (the last position read), or null when none is left. */
  next: Position | null;
}

export async function readListingPage<T>(source: ListingSource<T>, window: PageWindow, now = Date.now()): Promise<ListedPage<T>> {
  const { indexes } = source;
  const counts = await Promise.all(indexes.map((index) => index.count()));
  const merged = new MergedEntries(indexes, window.after);
  let skipped = 0;
  while (skipped < window.offset && (await merged.take()) !== null) skipped++;

  const fromTheStart = window.after === null && window.offset === 0;
  const confirmed = indexes.map(() => 0);
  const uncertain = indexes.map(() => false);
  const stale: Position[][] = indexes.map(() => []);
  const items: T[] = [];
  let last: Position | null = null;
  while (items.length < window.limit) {
    const batch: { entry: IndexEntry; index: number }[] = [];
    while (batch.length < window.limit - items.length) {
      const taken = await merged.take();
      if (taken === null) break;
      batch.push(taken);
    }
    if (batch.length === 0) break;
    const documents = await Promise.all(batch.map(({ entry }) => source.load(entry[1])));
    batch.forEach(({ entry, index }, at) => {
      const item = documents[at] ?? null;
      last = positionOf(entry);
      const place = item === null ? null : source.placeOf(item);
      const listedBy = indexes[index] as SortedIndex;
      if (item !== null && place !== null && place.tree === listedBy.tree && listedBy.order(place.position, entry) === 0) {
        confirmed[index] = (confirmed[index] ?? 0) + 1;
        if (source.keep === undefined || source.keep(item)) items.push(item);
      } else if (now - entry[2] > ENTRY_GRACE_MS) stale[index]?.push(positionOf(entry));
      else uncertain[index] = true;
    });
  }
  const more = await merged.hasMore();
  await Promise.all(
    indexes.map(async (index, at) => {
      const gone = stale[at] ?? [];
      if (gone.length > 0) await index.remove(gone).catch(() => undefined);
      // Read whole from the first entry: the count is known exactly, so a count a crash left wrong is set right.
      if (fromTheStart && merged.exhausted(at) && !uncertain[at]) await index.healCount(counts[at] ?? null, confirmed[at] ?? 0).catch(() => undefined);
    }),
  );
  const total = counts.reduce((sum, count, at) => {
    const exact = fromTheStart && merged.exhausted(at) && !uncertain[at];
    return sum + (exact ? (confirmed[at] ?? 0) : SortedIndex.countOf(count) - (stale[at]?.length ?? 0));
  }, 0);
  // The kept count can be short (a writer killed between an entry and its count): never say less than
  // this page shows, so that a client paging by offset up to `total` reaches the end.
  const seen = (window.after === null ? skipped : 0) + items.length + (more ? 1 : 0);
  return { items, total: Math.max(total, seen), next: more ? last : null };
}

/** Entries of several indexes in one listing order. */
class MergedEntries {
  private readonly iterators: AsyncGenerator<IndexEntry>[];
  private readonly heads: (IndexEntry | null | undefined)[];

  constructor(
    private readonly indexes: SortedIndex[],
    after: Position | null,
  ) {
    this.iterators = indexes.map((index) => index.entriesAfter(after));
    this.heads = indexes.map(() => undefined);
  }

  async take(): Promise<{ entry: IndexEntry; index: number } | null> {
    await this.fill();
    let best = -1;
    this.heads.forEach((head, at) => {
      if (head == null) return;
      const current = best < 0 ? null : (this.heads[best] as IndexEntry);
      if (current === null || (this.indexes[at] as SortedIndex).order(head, current) < 0) best = at;
    });
    if (best < 0) return null;
    const entry = this.heads[best] as IndexEntry;
    this.heads[best] = undefined;
    return { entry, index: best };
  }

  async hasMore(): Promise<boolean> {
    await this.fill();
    return this.heads.some((head) => head != null);
  }

  /** Whether that index has no entry left (after take() or hasMore() looked). */
  exhausted(at: number): boolean {
    return this.heads[at] === null;
  }

  private async fill(): Promise<void> {
    await Promise.all(
      this.heads.map(async (head, at) => {
        if (head !== undefined) return;
        const next = await (this.iterators[at] as AsyncGenerator<IndexEntry>).next();
        this.heads[at] = next.done ? null : next.value;
      }),
    );
  }
}
