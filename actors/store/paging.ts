import type { Page } from "./model.ts";
import type { Position } from "./sorted-index.ts";

export interface PageRequest {
  offset?: number;
  limit?: number;
  /** A cursor from a page's `next`: this page starts after the last entry that page read. */
  after?: string;
}

export const DEFAULT_PAGE_LIMIT = 50;
export const MAX_PAGE_LIMIT = 500;
/** Longest cursor taken: two keys of at most MAX_CURSOR_PART characters (a contact's title is up to 400), encoded. */
export const MAX_CURSOR_CHARS = 8_192;
const MAX_CURSOR_PART = 1_024;

/** A cursor that was not made by a page (mistyped, truncated, forged). */
export class BadCursor extends Error {
  override readonly name = "BadCursor";
}

export interface PageWindowRequest {
  offset: number;
  limit: number;
  after: Position | null;
}

/** The offset and limit within bounds, and the cursor decoded (BadCursor when it is not one). */
export function pageWindow(request: PageRequest): PageWindowRequest {
  return {
    offset: Math.max(0, Math.floor(request.offset ?? 0)),
    limit: Math.min(MAX_PAGE_LIMIT, Math.max(1, Math.floor(request.limit ?? DEFAULT_PAGE_LIMIT))),
    after: request.after === undefined ? null : decodeCursor(request.after),
  };
}

export function encodeCursor(position: Position): string {
  return Buffer.from(JSON.stringify(position), "utf8").toString("base64url");
}

export function decodeCursor(cursor: string): Position {
  if (cursor.length > MAX_CURSOR_CHARS || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw new BadCursor("not a cursor given by a page's next");
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw new BadCursor("not a cursor given by a page's next");
  }
  if (!Array.isArray(decoded) || decoded.length !== 2 || !decoded.every((part) => typeof part === "string" && part.length <= MAX_CURSOR_PART)) {
    throw new BadCursor("not a cursor given by a page's next");
  }
  return [decoded[0] as string, decoded[1] as string];
}

/** Cuts a page out of a sorted list (what is read whole anyway). */
export function pageOf<T>(sorted: T[], request: PageRequest): Page<T> {
  const offset = Math.max(0, request.offset ?? 0);
  const limit = Math.min(MAX_PAGE_LIMIT, Math.max(1, request.limit ?? DEFAULT_PAGE_LIMIT));
  const items = sorted.slice(offset, offset + limit);
  return { items, total: sorted.length, offset, limit, next: null };
}
