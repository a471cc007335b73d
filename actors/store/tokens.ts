// API bearer tokens: made with an expiry, listed by their public id, revoked one by one or all at once.
// A token's secret is shown once, when it is made; only its hash is kept, as the key of the lookup
// `apitoken.<hash>` that leads to the token's document (`<user_id>.<token_id>` in the tokens bucket).
// Nothing here caches: every check reads the store, so a revoke is seen by every node at once.
import { randomBytes } from "node:crypto";
import { DocumentExists, type KvDocuments } from "../../runtime/kv-documents.ts";
import { hashed, type Lookups } from "./lookups.ts";
import { type ApiToken, SCHEMA_VERSION } from "./model.ts";

const DAY_MS = 24 * 60 * 60 * 1000;

/** How long a new token lives unless told otherwise: long enough for a client, short enough that a leaked one dies. */
export const DEFAULT_TOKEN_LIFETIME_MS = 90 * DAY_MS;

/** `last_used` is written at most this often per token, so that a busy token costs a write a minute, not one per request. */
export const LAST_USED_RESOLUTION_MS = 60_000;

const TOKEN_ID = /^tok_[0-9a-f]{16}$/;

export function isTokenId(value: string): boolean {
  return TOKEN_ID.test(value);
}

export interface NewToken {
  token: ApiToken;
  /** The bearer token itself: shown once, never stored. */
  secret: string;
}

/** What `locate` found: the token's document key, the secret's hash, and the token's user. */
export interface TokenPlace {
  key: string;
  hash: string;
  user_id: string;
}

export interface TokenOptions {
  /** Milliseconds from now; null for a token that never expires; absent for DEFAULT_TOKEN_LIFETIME_MS. */
  lifetimeMs?: number | null;
  now?: Date;
}

export class TokenStore {
  constructor(
    private readonly docs: KvDocuments<ApiToken>,
    private readonly lookups: Lookups,
  ) {}

  /** A new token for the user (their other tokens stay valid). */
  async create(userId: string, options: TokenOptions = {}): Promise<NewToken> {
    const now = options.now ?? new Date();
    const lifetime = options.lifetimeMs === undefined ? DEFAULT_TOKEN_LIFETIME_MS : options.lifetimeMs;
    const secret = `cal_${randomBytes(24).toString("base64url")}`;
    const token: ApiToken = {
      schema: SCHEMA_VERSION,
      token_id: `tok_${randomBytes(8).toString("hex")}`,
      user_id: userId,
      secret_hash: hashed(secret),
      date_insert: now.toISOString(),
      expires_at: lifetime === null ? null : new Date(now.getTime() + lifetime).toISOString(),
      last_used: null,
      revoked_at: null,
      legacy: false,
    };
    // The document first: a lookup never leads nowhere.
    await this.docs.create(documentKey(token), token);
    await this.lookups.set(secretKey(token.secret_hash), documentKey(token));
    return { token, secret };
  }

  /**
   * The token a secret stands for, whatever its state (see `tokenRefusal`); null when unknown. A token
   * made before tokens had ids is migrated into a token document here, on its first use.
   */
  async find(secret: string): Promise<ApiToken | null> {
    const place = await this.locate(secret);
    return place === null ? null : this.read(place);
  }

  /**
   * Where the token a secret stands for is kept, and whose it is, before reading it: the API reads the
   * user alongside the token instead of after it (one store round trip less per request). Migrates a
   * token made before tokens had ids, as `find` does.
   */
  async locate(secret: string): Promise<TokenPlace | null> {
    const hash = hashed(secret);
    const key = (await this.lookups.get(secretKey(hash))) ?? (await this.migrateLegacy(hash));
    const userId = key?.split(".")[0];
    return key === null || userId === undefined ? null : { key, hash, user_id: userId };
  }

  /** The token at a place `locate` gave; null when it is gone or is not the secret's. */
  async read(place: TokenPlace): Promise<ApiToken | null> {
    const token = (await this.docs.get(place.key))?.value ?? null;
    return token !== null && token.secret_hash === place.hash ? token : null;
  }

  /** The user's tokens, revoked and expired ones too, oldest first (their legacy tokens are migrated first). */
  async list(userId: string): Promise<ApiToken[]> {
    for (const { key, target } of await this.lookups.targetsWithKeys(`${LEGACY_PREFIX}*`)) {
      if (target === userId) await this.adoptLegacy(key.slice(LEGACY_PREFIX.length), userId);
    }
    return (await this.docs.values(`${userId}.*`)).sort((a, b) => a.date_insert.localeCompare(b.date_insert) || a.token_id.localeCompare(b.token_id));
  }

  /** Revokes one token; resolves to it (revoked, maybe earlier), or null when there is no such token. */
  async revoke(tokenId: string, now = new Date()): Promise<ApiToken | null> {
    if (!isTokenId(tokenId)) return null;
    const [key] = await this.docs.keys(`*.${tokenId}`);
    return key === undefined ? null : this.docs.update(key, (token) => revoked(token, now));
  }

  /** Revokes every token of the user; resolves to those it revoked (not those already revoked). */
  async revokeAll(userId: string, now = new Date()): Promise<ApiToken[]> {
    const live = (await this.list(userId)).filter((token) => token.revoked_at === null);
    const done = await Promise.all(live.map((token) => this.docs.update(documentKey(token), (current) => revoked(current, now))));
    return done.filter((token): token is ApiToken => token !== null && token.revoked_at === now.toISOString());
  }

  /**
   * Records that the token was used at `now`, unless that was already recorded less than
   * LAST_USED_RESOLUTION_MS earlier (by this node or another). Compare-and-swap: a revoke in between wins.
   */
  async touch(token: ApiToken, now = new Date()): Promise<void> {
    await this.docs.update(documentKey(token), (current) => (usedSince(current, now) ? null : { ...current, last_used: now.toISOString() }));
  }

  /** Turns the legacy lookup `token.<hash>` (if any) into a token document; resolves to its key, or null. */
  private async migrateLegacy(hash: string): Promise<string | null> {
    const userId = await this.lookups.get(`${LEGACY_PREFIX}${hash}`);
    return userId === null ? null : this.adoptLegacy(hash, userId);
  }

  /**
   * A token made before tokens had ids (only the lookup `token.<hash>` → user id) becomes a token document
   * that never expires. Its id comes from its hash, so concurrent migrations (two nodes, the CLI) make the
   * same document, and the first one's state (a revoke, say) stands. The legacy lookup goes last.
   */
  private async adoptLegacy(hash: string, userId: string): Promise<string> {
    const token: ApiToken = {
      schema: SCHEMA_VERSION,
      token_id: `tok_${hashed(`legacy.${hash}`).slice(0, 16)}`,
      user_id: userId,
      secret_hash: hash,
      // When it was made is not known: the migration's date stands for it.
      date_insert: new Date().toISOString(),
      expires_at: null,
      last_used: null,
      revoked_at: null,
      legacy: true,
    };
    try {
      await this.docs.create(documentKey(token), token);
    } catch (err) {
      if (!(err instanceof DocumentExists)) throw err;
    }
    await this.lookups.set(secretKey(hash), documentKey(token));
    await this.lookups.release(`${LEGACY_PREFIX}${hash}`);
    return documentKey(token);
  }
}

/** Why the API refuses the token at `now` (a message naming its id, never its secret), or null when it is good. */
export function tokenRefusal(token: ApiToken, now = new Date()): string | null {
  if (token.revoked_at !== null) return `token ${token.token_id} was revoked`;
  if (isExpired(token, now)) return `token ${token.token_id} expired at ${token.expires_at}`;
  return null;
}

export function isExpired(token: ApiToken, now = new Date()): boolean {
  return token.expires_at !== null && Date.parse(token.expires_at) <= now.getTime();
}

/** Whether `last_used` already says the token was used less than LAST_USED_RESOLUTION_MS before `now`. */
export function usedSince(token: ApiToken, now: Date): boolean {
  return token.last_used !== null && now.getTime() - Date.parse(token.last_used) < LAST_USED_RESOLUTION_MS;
}

const LEGACY_PREFIX = "token.";
const secretKey = (hash: string) => `apitoken.${hash}`;
const documentKey = (token: ApiToken) => `${token.user_id}.${token.token_id}`;
const revoked = (token: ApiToken, now: Date): ApiToken | null => (token.revoked_at === null ? { ...token, revoked_at: now.toISOString() } : null);
