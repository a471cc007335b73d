// What this process last wrote or read of the raws it handled lately: the document's revision, so that
// marking a raw delivered is one compare-and-swap instead of a read and a compare-and-swap, and where
// its bytes are, so that reading them asks nothing first. A hint only: a stale revision fails its
// compare-and-swap and is read again; the bytes are looked for where the hint says, then everywhere.
import type { Versioned } from "../../runtime/kv-documents.ts";
import type { RawMessage } from "./model.ts";

/** An object-store raw as its `put` described it: what `stream()` would otherwise ask the store for. */
export interface ObjectPlace {
  kind: "object";
  nuid: string;
  size: number;
  /** `SHA-256=<base64url>`, as the object store writes it. */
  digest: string;
}

export type RawPlace = { kind: "inline" } | ObjectPlace;

interface Known {
  doc?: Versioned<RawMessage>;
  place?: RawPlace;
}

/** Enough for the raws of the imports in flight on a node (an entry is about half a KiB). */
const DEFAULT_CAPACITY = 1024;

export class KnownRaws {
  private readonly entries = new Map<string, Known>();

  constructor(private readonly capacity = DEFAULT_CAPACITY) {}

  doc(rawId: string): Versioned<RawMessage> | undefined {
    return this.entries.get(rawId)?.doc;
  }

  place(rawId: string): RawPlace | undefined {
    return this.entries.get(rawId)?.place;
  }

  note(rawId: string, known: Known): void {
    const merged = { ...this.entries.get(rawId), ...known };
    // Re-inserted, so the Map's order is least recently noted first.
    this.entries.delete(rawId);
    this.entries.set(rawId, merged);
    if (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next();
      if (oldest.done !== true) this.entries.delete(oldest.value);
    }
  }

  forget(rawId: string): void {
    this.entries.delete(rawId);
  }
}
