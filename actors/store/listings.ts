// The sorted indexes behind the paged listings (a user's messages, contacts, identities), in one KV bucket,
// with what a process remembers of them: where leaves start (hints) and which indexes are built.
import { LRUCache } from "lru-cache";
import type { KvDocuments, Versioned } from "../../runtime/kv-documents.ts";
import { forEachLimited } from "./bounded-concurrency.ts";
import { hashed } from "./lookups.ts";
import { type Hints, type IndexCaches, type ListingDoc, type Order, SortedIndex } from "./sorted-index.ts";
import { WriteBatches } from "./write-batches.ts";

/** Hints remembered at most, all indexes together (about 60 bytes each). */
const MAX_CACHED_HINTS = 200_000;
const MAX_BUILT_REMEMBERED = 100_000;
/** Leaf entries remembered at most, all leaves together (about 100 bytes each), for writers (see IndexCaches). */
const MAX_CACHED_ENTRIES = 200_000;
/** Documents read at once while an index is built from them. */
const BUILD_READS_IN_FLIGHT = 128;

export class Listings {
  private readonly caches: IndexCaches;
  private readonly built = new LRUCache<string, true>({ max: MAX_BUILT_REMEMBERED });
  private readonly building = new Map<string, Promise<void>>();

  constructor(private readonly docs: KvDocuments<ListingDoc>) {
    this.caches = {
      hints: new LRUCache<string, Hints>({ maxSize: MAX_CACHED_HINTS, sizeCalculation: (hints) => hints.starts.length + 1 }),
      versions: new LRUCache<string, Versioned<ListingDoc>>({
        maxSize: MAX_CACHED_ENTRIES,
        sizeCalculation: (version) => (version.value.kind === "leaf" ? version.value.entries.length : 0) + 1,
      }),
      writes: new WriteBatches(),
    };
  }

  index(tree: string, order: Order): SortedIndex {
    return new SortedIndex(this.docs, tree, order, this.caches);
  }

  /**
   * Makes sure the indexes of `family` were built once from the documents stored before them (what an
   * earlier version wrote without entries): `build` inserts them (inserting is idempotent, so two
   * processes building at once, or writers adding entries meanwhile, do no harm), then a marker says so.
   */
  async ensureBuilt(family: string, build: () => Promise<void>): Promise<void> {
    if (this.built.has(family)) return;
    let pending = this.building.get(family);
    if (pending === undefined) {
      pending = (async () => {
        if ((await this.docs.get(`${family}.built`)) === null) {
          await build();
          await this.docs.put(`${family}.built`, { kind: "built", at: new Date().toISOString() });
        }
        this.built.set(family, true);
      })().finally(() => this.building.delete(family));
      this.building.set(family, pending);
    }
    await pending;
  }
}

/** A user's part of the bucket: hashed, so any user id makes a valid, fixed-length key token. */
export const userToken = (userId: string) => hashed(`user:${userId}`).slice(0, 32);

/** Plain code-unit order (ISO dates, UUIDs): the same in every runtime and locale. */
export const byCodeUnits = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * What `pick` keeps of every document under `filter` (an index entry, not the document: a user's 100,000
 * messages whole would weigh on memory), read BUILD_READS_IN_FLIGHT at a time.
 */
export async function pickFromEvery<T, R>(docs: KvDocuments<T>, filter: string, pick: (document: T) => R): Promise<R[]> {
  const picked: R[] = [];
  await forEachLimited(await docs.keys(filter), BUILD_READS_IN_FLIGHT, async (key) => {
    const found = await docs.get(key);
    if (found !== null) picked.push(pick(found.value));
  });
  return picked;
}
