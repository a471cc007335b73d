// The largest request body each operation accepts, by what it stores: a body over it is refused (413)
// before it is read in full, let alone parsed. A route that takes a body must be listed here.
import type { RouteOptions } from "fastify";

const KiB = 1024;

/** By operationId. */
export const BODY_LIMITS: Readonly<Record<string, number>> = {
  // Credentials: up to 16 values of 4,096 characters; the rest is small.
  CreateUserIdentity: 128 * KiB,
  PatchUserIdentity: 128 * KiB,
  // Up to 100 addresses and 100 social identities: about 100 KB at the schema's maxima.
  CreateContact: 128 * KiB,
  UpdateContact: 128 * KiB,
  // One armored key of up to 200,000 characters.
  CreatePGPPubKey: 256 * KiB,
  // One armored private key of up to 128 Ki characters, and its passphrase.
  StorePrivateKey: 160 * KiB,
  // A draft is stored as one KV value, which must fit in NATS's default max_payload (1 MiB).
  CreateDraft: 960 * KiB,
  PatchMessage: 960 * KiB,
  SendEmailAdminToUser: 960 * KiB,
  // {"provider", "username"}
  AuthorizeUserIdentity: 1 * KiB,
  // {"actions":["send"]}
  SendDraft: 1 * KiB,
};

/** Routes that take no body. */
export const NO_BODY_LIMIT = 1 * KiB;

/** The body limit of a route (called as it is added); throws for a route with a body schema and no limit. */
export function bodyLimitOf(route: Pick<RouteOptions, "method" | "url" | "schema">): number {
  const operationId = route.schema?.operationId;
  const limit = typeof operationId === "string" ? BODY_LIMITS[operationId] : undefined;
  if (limit !== undefined) return limit;
  if (route.schema?.body !== undefined) throw new Error(`${String(route.method)} ${route.url} takes a body but has no limit in api/body-limits.ts`);
  return NO_BODY_LIMIT;
}

export function formatBytes(bytes: number): string {
  if (bytes % (1024 * KiB) === 0) return `${bytes / (1024 * KiB)} MiB`;
  if (bytes % KiB === 0) return `${bytes / KiB} KiB`;
  return `${bytes} bytes`;
}
