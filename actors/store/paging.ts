import type { Page } from "./model.ts";

export interface PageRequest {
  offset?: number;
  limit?: number;
}

export const DEFAULT_PAGE_LIMIT = 50;
export const MAX_PAGE_LIMIT = 500;

/** Cuts a page out of a sorted list. */
export function pageOf<T>(sorted: T[], request: PageRequest): Page<T> {
  const offset = Math.max(0, request.offset ?? 0);
  const limit = Math.min(MAX_PAGE_LIMIT, Math.max(1, request.limit ?? DEFAULT_PAGE_LIMIT));
  return { items: sorted.slice(offset, offset + limit), total: sorted.length, offset, limit };
}
