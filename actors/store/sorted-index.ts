// A sorted index kept in JetStream KV, which has no ordered scans: its entries (a sort key and the id of
// the object listed) live in leaves of at most LEAF_MAX entries, chained from a head leaf in listing
// order, each leaf knowing where the next one begins. A page reads the leaves it spans, never the whole
// index; writing an entry rewrites one leaf by compare-and-swap. A leaf only ever splits (keeping its
// start and the first part), never merges nor goes away, so a place found once (a hint, a cursor) stays a
// valid place to walk on from, whatever splits happened since.
import { randomUUID } from "node:crypto";
import { DocumentContention, DocumentExists, type KvDocuments, type Versioned } from "../../runtime/kv-documents.ts";
import { forEachLimited } from "./bounded-concurrency.ts";
import type { WriteBatches } from "./write-batches.ts";

/** Where an object sits in a listing: its sort key, then its id to order equal keys. */
export type Position = readonly [key: string, id: string];
/** An entry: its position, and when it was written (ms since the epoch), to tell a write in flight from what a crash left. */
export type IndexEntry = readonly [key: string, id: string, at: number];
/** A position, or an entry (whose position is its first two fields). */
export type Positioned = readonly [key: string, id: string, ...at: number[]];
/** Listing order: negative when `a` comes first. */
export type Order = (a: Positioned, b: Positioned) => number;

export interface Leaf {
  kind: "leaf";
  entries: IndexEntry[];
  /** The first position of the next leaf (null for the last leaf). */
  upTo: Position | null;
  next: string | null;
}
export interface Hints {
  kind: "hints";
  /** Where some leaves start, in listing order: a shortcut past the walk from the head. */
  starts: [key: string, id: string, leaf: string][];
}
interface Count {
  kind: "count";
  n: number;
}
interface Built {
  kind: "built";
  at: string;
}
/** What the listings bucket holds. */
export type ListingDoc = Leaf | Hints | Count | Built;

export const LEAF_MAX = 200;
/** How full a split leaves each part: room for inserts before the next split. */
const LEAF_FILL = 150;
/** Hints kept at most per index (about 60 bytes each); past it every other one goes, so walks get a little longer. */
const MAX_HINTS = 8_000;
/** A walk longer than this reloads the hints: another process split leaves since. */
const HOPS_BEFORE_RELOAD = 4;
/** Rounds of compare-and-swap lost to other writers before giving up (each round is up to 20 attempts). */
const CONTENTION_ROUNDS = 10;
const HEAD = "head";

export interface KeyedCache<V> {
  get(key: string): V | undefined;
  set(key: string, value: V): void;
  delete(key: string): void;
}

export interface IndexCaches {
  /** Hints by index. */
  hints: KeyedCache<Hints>;
  /**
   * The last version of leaves and counts this process wrote or read to write, by key: a writer starts its
   * compare-and-swap from it (one round trip while nobody else writes; a stale one only costs a retry).
   * Readers never use it.
   */
  versions: KeyedCache<Versioned<ListingDoc>>;
  /** The writes of this process to each index, batched (see write-batches.ts). */
  writes: WriteBatches<Positioned>;
}

export class SortedIndex {
  constructor(
    private readonly docs: KvDocuments<ListingDoc>,
    /** The index's key prefix in the bucket (e.g. `m.<user>.mail`). */
    readonly tree: string,
    readonly order: Order,
    private readonly caches: IndexCaches,
  ) {}

  /**
   * Adds entries (an entry already there at that position is refreshed); resolves to how many were new
   * (of the batch it was written with, when other writes of this process joined it: see write-batches.ts).
   */
  insert(entries: readonly IndexEntry[]): Promise<number> {
    return this.caches.writes.push(this.tree, "insert", entries, (kind, items) => this.write(kind, items));
  }

  /** Removes the entries at these positions; resolves to how many were there (of its batch, as insert). */
  remove(positions: readonly Positioned[]): Promise<number> {
    return this.caches.writes.push(this.tree, "remove", positions, (kind, items) => this.write(kind, items));
  }

  private write(kind: string, items: Positioned[]): Promise<number> {
    return kind === "insert" ? this.insertNow(items as IndexEntry[]) : this.removeNow(items);
  }

  private async insertNow(entries: readonly IndexEntry[]): Promise<number> {
    let remaining = [...entries].sort((a, b) => this.order(a, b));
    let added = 0;
    let madeHead = false;
    for (let round = 0; remaining.length > 0; round++) {
      const first = remaining[0] as IndexEntry;
      const { id, leaf } = await this.locate(first, true);
      if (leaf === null) {
        // A new index: its head is made holding the entries (one write instead of an empty head and a
        // swap); when another writer made it first, the next round merges into theirs.
        const unique = mergeEntries([], remaining, this.order);
        const head = unique.slice(0, LEAF_MAX);
        if (await this.createHead(head)) {
          added += head.length;
          madeHead = true;
          remaining = unique.slice(head.length);
        }
        continue;
      }
      const current = leaf.value;
      const fits = remaining.slice(0, current.upTo === null ? remaining.length : countBefore(remaining, current.upTo, this.order));
      const merged = mergeEntries(current.entries, fits, this.order);
      const written = await this.writeLeaf(id, leaf, merged);
      if (!written) {
        await contentionPause(round);
        continue;
      }
      added += merged.length - current.entries.length;
      remaining = remaining.slice(fits.length);
    }
    if (added !== 0) await this.adjustCount(added, madeHead);
    return added;
  }

  private async removeNow(positions: readonly Positioned[]): Promise<number> {
    let remaining = [...positions].sort(this.order);
    let removed = 0;
    for (let round = 0; remaining.length > 0; round++) {
      // Fresh reads: a remembered version without the entry would say it is gone when another process put it since.
      const { id, leaf } = await this.locate(remaining[0] as Position, false);
      if (leaf === null) return removed;
      const current = leaf.value;
      const here = remaining.slice(0, current.upTo === null ? remaining.length : countBefore(remaining, current.upTo, this.order));
      const kept = current.entries.filter((entry) => !here.some((position) => this.order(entry, position) === 0));
      const gone = current.entries.length - kept.length;
      if (gone > 0 && !(await this.swap(this.leafKey(id), leaf, { ...current, entries: kept }))) {
        await contentionPause(round);
        continue;
      }
      removed += gone;
      remaining = remaining.slice(here.length);
    }
    if (removed !== 0) await this.adjustCount(-removed, false);
    return removed;
  }

  /** The entries after `after` (from the first when null), in listing order, a leaf at a time. */
  async *entriesAfter(after: Position | null): AsyncGenerator<IndexEntry> {
    const start = after === null ? { id: HEAD, leaf: await this.readLeaf(HEAD, false) } : await this.locate(after, false);
    let leaf = start.leaf;
    while (leaf !== null) {
      for (const entry of leaf.value.entries) if (after === null || this.order(entry, after) > 0) yield entry;
      const next = leaf.value.next;
      leaf = next === null ? null : await this.readLeaf(next, false);
    }
  }

  /** How many entries the index holds, as counted on every write (see healCount). */
  async count(): Promise<Versioned<ListingDoc> | null> {
    return this.docs.get(`${this.tree}.count`);
  }

  static countOf(found: Versioned<ListingDoc> | null): number {
    return found !== null && found.value.kind === "count" ? Math.max(0, found.value.n) : 0;
  }

  /** Sets the count to what a reader saw entry by entry, unless another writer changed it since `known`. */
  async healCount(known: Versioned<ListingDoc> | null, exact: number): Promise<void> {
    if (SortedIndex.countOf(known) === exact) return;
    const next: Count = { kind: "count", n: exact };
    if (known === null) await this.docs.create(`${this.tree}.count`, next).catch(ignoreExisting);
    else await this.swap(`${this.tree}.count`, known, next);
  }

  /** `isNew`: the index's head was just made, so its count is most likely not there yet: made without a read first. */
  private async adjustCount(delta: number, isNew: boolean): Promise<void> {
    const key = `${this.tree}.count`;
    if (isNew && delta > 0) {
      const count: Count = { kind: "count", n: delta };
      try {
        this.caches.versions.set(key, { value: count, revision: await this.docs.create(key, count) });
        return;
      } catch (err) {
        // A count left without its head (a bucket restored in part): adjusted as any other.
        if (!(err instanceof DocumentExists)) throw err;
      }
    }
    await persist(async () => {
      const known = this.caches.versions.get(key) ?? null;
      const updated = await this.docs.updateFrom(key, known, (current) => (current.kind === "count" ? { kind: "count", n: current.n + delta } : null));
      if (updated !== null) {
        this.caches.versions.set(key, updated);
        return;
      }
      try {
        await this.docs.create(key, { kind: "count", n: Math.max(0, delta) });
      } catch (err) {
        if (!(err instanceof DocumentExists)) throw err;
        throw new DocumentContention(`${key} was made meanwhile`);
      }
    });
  }

  /** The leaf whose range holds `position`: from the nearest hint, then along the chain (null: the index has no head yet). */
  private async locate(position: Positioned, toWrite: boolean): Promise<{ id: string; leaf: Versioned<Leaf> | null }> {
    let id = this.hintFor(await this.hints(), position);
    for (let hops = 0; ; hops++) {
      // From versions this process knows when it is to write: a leaf's start never changes and each
      // version's end is where its next leaf starts, so a stale one still leads the right way, and the
      // compare-and-swap that follows refuses a write based on it.
      const leaf = await this.readLeaf(id, toWrite);
      if (leaf === null && id !== HEAD) {
        // A hint to a leaf that is not there (a bucket restored without it): start from the head.
        this.caches.hints.delete(this.tree);
        id = HEAD;
        continue;
      }
      if (leaf === null) return { id, leaf: null };
      const { upTo, next } = leaf.value;
      if (upTo === null || next === null || this.order(position, upTo) < 0) {
        if (hops > HOPS_BEFORE_RELOAD) this.caches.hints.delete(this.tree);
        return { id, leaf };
      }
      id = next;
    }
  }

  /** Makes the head leaf holding `entries` (at most LEAF_MAX, sorted); false when another writer made it first. */
  private async createHead(entries: IndexEntry[]): Promise<boolean> {
    const head: Leaf = { kind: "leaf", entries, upTo: null, next: null };
    try {
      this.caches.versions.set(this.leafKey(HEAD), { value: head, revision: await this.docs.create(this.leafKey(HEAD), head) });
      return true;
    } catch (err) {
      if (!(err instanceof DocumentExists)) throw err;
      return false;
    }
  }

  /**
   * Writes `entries` as the leaf's content by compare-and-swap. Past LEAF_MAX the leaf splits: the new
   * leaves are written first (nothing points at them yet, so a crash leaves them unread), then the leaf
   * itself, keeping the first part and pointing at them. Resolves false when another writer got there first.
   */
  private async writeLeaf(id: string, known: Versioned<Leaf>, entries: IndexEntry[]): Promise<boolean> {
    const { upTo, next } = known.value;
    if (entries.length <= LEAF_MAX) return this.swap(this.leafKey(id), known, { kind: "leaf", entries, upTo, next });
    const parts: IndexEntry[][] = [];
    for (let at = 0; at < entries.length; at += LEAF_FILL) parts.push(entries.slice(at, at + LEAF_FILL));
    const ids = parts.map((_, index) => (index === 0 ? id : randomUUID()));
    const leafAt = (index: number): Leaf => ({
      kind: "leaf",
      entries: parts[index] as IndexEntry[],
      upTo: index + 1 < parts.length ? positionOf((parts[index + 1] as IndexEntry[])[0] as IndexEntry) : upTo,
      next: index + 1 < parts.length ? (ids[index + 1] as string) : next,
    });
    const created = ids.slice(1).map((leafId, index) => ({ leafId, leaf: leafAt(index + 1) }));
    await forEachLimited(created, 64, ({ leafId, leaf }) => this.docs.create(this.leafKey(leafId), leaf));
    if (!(await this.swap(this.leafKey(id), known, leafAt(0)))) {
      await forEachLimited(created, 64, ({ leafId }) => this.docs.delete(this.leafKey(leafId))).catch(() => undefined);
      return false;
    }
    await this.addHints(created.map(({ leafId, leaf }) => [...positionOf(leaf.entries[0] as IndexEntry), leafId])).catch(() => undefined);
    return true;
  }

  private async addHints(starts: [string, string, string][]): Promise<void> {
    const key = `${this.tree}.hints`;
    const merge = (current: Hints["starts"]): Hints => {
      let merged = [...current, ...starts].sort((a, b) => this.order([a[0], a[1]], [b[0], b[1]]));
      while (merged.length > MAX_HINTS) merged = merged.filter((_, index) => index % 2 === 1);
      return { kind: "hints", starts: merged };
    };
    const stored = await persist(async () => {
      const updated = await this.docs.update(key, (current) => (current.kind === "hints" ? merge(current.starts) : null));
      if (updated !== null) return updated;
      const made = merge([]);
      await this.docs.create(key, made).catch((err: unknown) => {
        throw err instanceof DocumentExists ? new DocumentContention(`${key} was made meanwhile`) : err;
      });
      return made;
    });
    if (stored.kind === "hints") this.caches.hints.set(this.tree, stored);
  }

  private async hints(): Promise<Hints> {
    const cached = this.caches.hints.get(this.tree);
    if (cached !== undefined) return cached;
    const found = (await this.docs.get(`${this.tree}.hints`))?.value;
    const hints: Hints = found?.kind === "hints" ? found : { kind: "hints", starts: [] };
    this.caches.hints.set(this.tree, hints);
    return hints;
  }

  /** The last hinted leaf starting at or before `position`, or the head. */
  private hintFor(hints: Hints, position: Positioned): string {
    let low = 0;
    let high = hints.starts.length - 1;
    let found = HEAD;
    while (low <= high) {
      const middle = (low + high) >> 1;
      const start = hints.starts[middle] as [string, string, string];
      if (this.order([start[0], start[1]], position) <= 0) {
        found = start[2];
        low = middle + 1;
      } else high = middle - 1;
    }
    return found;
  }

  /** A leaf as stored, or (`toWrite`) as this process last knew it. */
  private async readLeaf(id: string, toWrite: boolean): Promise<Versioned<Leaf> | null> {
    const key = this.leafKey(id);
    const found = (toWrite ? this.caches.versions.get(key) : undefined) ?? (await this.docs.get(key));
    if (found === null) return null;
    if (found.value.kind !== "leaf") throw new Error(`${key} is not a leaf`);
    if (toWrite) this.caches.versions.set(key, found);
    return { value: found.value, revision: found.revision };
  }

  /** Writes `next` over `known` if it is still the stored version; false when another writer changed it. */
  private async swap(key: string, known: Versioned<ListingDoc>, next: ListingDoc): Promise<boolean> {
    try {
      const result = await this.docs.updateFrom(key, known, (current) => (current === known.value ? next : null));
      if (result !== null && result.value === next) {
        this.caches.versions.set(key, result);
        return true;
      }
    } catch (err) {
      this.caches.versions.delete(key);
      throw err;
    }
    this.caches.versions.delete(key);
    return false;
  }

  private leafKey(id: string): string {
    return `${this.tree}.leaf.${id}`;
  }
}

export const positionOf = (entry: IndexEntry): Position => [entry[0], entry[1]];

/** How many of the sorted `items` come before `bound`. */
function countBefore(items: readonly Positioned[], bound: Positioned, order: Order): number {
  let low = 0;
  let high = items.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (order(items[middle] as Positioned, bound) < 0) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** Both sorted; an entry of `added` at a position already held replaces it (a fresher `at`). */
function mergeEntries(existing: readonly IndexEntry[], added: readonly IndexEntry[], order: Order): IndexEntry[] {
  const out: IndexEntry[] = [];
  let i = 0;
  let j = 0;
  while (i < existing.length || j < added.length) {
    const a = existing[i];
    const b = added[j];
    if (b === undefined || (a !== undefined && order(a, b) < 0)) {
      out.push(a as IndexEntry);
      i++;
    } else if (a === undefined || order(a, b) > 0) {
      if (out.length === 0 || order(out[out.length - 1] as IndexEntry, b) !== 0) out.push(b);
      j++;
    } else {
      out.push(b);
      i++;
      j++;
    }
  }
  return out;
}

/** Runs `work` again, after a growing random pause, while it loses to other writers. */
async function persist<T>(work: () => Promise<T>): Promise<T> {
  for (let round = 0; ; round++) {
    try {
      return await work();
    } catch (err) {
      if (!(err instanceof DocumentContention) || round >= CONTENTION_ROUNDS) throw err;
      await contentionPause(round);
    }
  }
}

async function contentionPause(round: number): Promise<void> {
  if (round >= CONTENTION_ROUNDS * 20) throw new DocumentContention("an index leaf kept changing under its writers");
  if (round > 0) await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(50, 2 * round)));
}

function ignoreExisting(err: unknown): void {
  if (!(err instanceof DocumentExists)) throw err;
}
