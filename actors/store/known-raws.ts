// What this process last wrote or read of the raws it handled lately: the document's revision, so that
// marking a raw delivered is one compare-and-swap instead of a read and a compare-and-swap; where its
// bytes are, so that reading them asks nothing first; and, for a small raw it has just written, the
// bytes themselves, so that the import that follows on this node (the inbound actor of the raw's user,
// most often here) reads nothing back. A hint only: a stale revision fails its compare-and-swap and is
// read again; the bytes are looked for where the hint says, then everywhere. Bytes are kept within a
// budget and given once: nothing here grows with what a node stores.
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
  /** The content as written, until an import takes it. */
  bytes?: Uint8Array;
}

/** Enough for the raws of the imports in flight on a node (an entry is about half a KiB, bytes apart). */
const DEFAULT_CAPACITY = 1024;
/** The bytes kept at most, all raws together: a few batches of mail in flight. */
const DEFAULT_MAX_BYTES = 16 * 1024 * 1024;

export class KnownRaws {
  private readonly entries = new Map<string, Known>();
  private heldBytes = 0;

  constructor(
    private readonly capacity = DEFAULT_CAPACITY,
    private readonly maxBytes = DEFAULT_MAX_BYTES,
  ) {}

  doc(rawId: string): Versioned<RawMessage> | undefined {
    return this.entries.get(rawId)?.doc;
  }

  place(rawId: string): RawPlace | undefined {
    return this.entries.get(rawId)?.place;
  }

  /** The bytes written here, given once (then forgotten): undefined when not kept. */
  takeBytes(rawId: string): Uint8Array | undefined {
    const known = this.entries.get(rawId);
    const bytes = known?.bytes;
    if (known === undefined || bytes === undefined) return undefined;
    delete known.bytes;
    this.heldBytes -= bytes.length;
    return bytes;
  }

  /** Bytes kept now, all raws together (for tests). */
  get bytesHeld(): number {
    return this.heldBytes;
  }

  note(rawId: string, known: Known): void {
    const before = this.entries.get(rawId);
    const merged = { ...before, ...known };
    if (known.bytes !== undefined && before?.bytes !== undefined) this.heldBytes -= before.bytes.length;
    if (known.bytes !== undefined) {
      if (known.bytes.length > this.maxBytes) delete merged.bytes;
      else this.heldBytes += known.bytes.length;
    }
    // Re-inserted, so the Map's order is least recently noted first.
    this.entries.delete(rawId);
    this.entries.set(rawId, merged);
    if (this.entries.size > this.capacity) this.evictOldest();
    // Past the budget, the oldest raws' bytes go first (their ids and revisions stay).
    for (const entry of this.entries.values()) {
      if (this.heldBytes <= this.maxBytes) break;
      if (entry.bytes === undefined) continue;
      this.heldBytes -= entry.bytes.length;
      delete entry.bytes;
    }
  }

  forget(rawId: string): void {
    const bytes = this.entries.get(rawId)?.bytes;
    if (bytes !== undefined) this.heldBytes -= bytes.length;
    this.entries.delete(rawId);
  }

  private evictOldest(): void {
    const oldest = this.entries.keys().next();
    if (oldest.done !== true) this.forget(oldest.value);
  }
}
