// Building blocks the resources' JSON schemas share: identifiers, bounded strings, the error body, and
// the paging query and page every list route answers with.

import { MAX_CURSOR_CHARS } from "../../actors/store/paging.ts";

export const uuid = { type: "string", pattern: "^[0-9a-fA-F-]{36}$" } as const;

export const decimalMinutes = { type: "string", pattern: "^[0-9]+(\\.[0-9]+)?$", description: "minutes, a decimal string" } as const;
export const hostPort = { type: "string", pattern: "^[^\\s:/]+:[0-9]{1,5}$", description: "host:port" } as const;
export const email = { type: "string", pattern: "^[^\\s@]+@[^\\s@]+$", maxLength: 320 } as const;

/** A free-text field, bounded so that no body can grow a stored document without limit. */
export const text = (maxLength: number) => ({ type: "string", maxLength }) as const;

export const errorSchema = {
  $id: "Error",
  type: "object",
  required: ["error", "message"],
  properties: { error: { type: "string" }, message: { type: "string" }, field: { type: "string" } },
} as const;

export const pageQuery = {
  type: "object",
  additionalProperties: false,
  properties: {
    offset: {
      type: "integer",
      minimum: 0,
      default: 0,
      description: "entries to pass over (after `after` when given); a deep offset costs what it passes over, `after` does not",
    },
    limit: { type: "integer", minimum: 1, maximum: 500, default: 50 },
    after: {
      type: "string",
      minLength: 1,
      maxLength: MAX_CURSOR_CHARS,
      pattern: "^[A-Za-z0-9_-]+$",
      description: "the `next` of the previous page: this page starts after it, at the cost of a first page",
    },
  },
} as const;

/** A page of a list route: its items are the shared schema `itemRef` names (its `$id`). */
export const page = (itemRef: string) =>
  ({
    type: "object",
    properties: {
      items: { type: "array", items: { $ref: `${itemRef}#` } },
      total: { type: "integer" },
      offset: { type: "integer" },
      limit: { type: "integer" },
      next: { type: ["string", "null"], description: "`after` for the page after this one; null when this one is the last" },
    },
  }) as const;
