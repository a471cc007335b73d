// What an inbound processor may remember between the imports of one user, so that a batch (an IMAP
// sync, a burst of mail) does not read the same documents for every message: the user, the receiving
// identities, the contacts of addresses seen lately, and the Message-IDs of messages stored lately.
//
// Only what the imports use is kept (no credentials, no bodies), every map is bounded, and what can
// change elsewhere is re-read once it is older than its time to live. A refusal is never served from
// memory: an identity that would be refused (deleted, of another protocol) is read again first.
// Message-IDs need no time to live: a received message is never deleted and its claim never moves.
import { LRUCache } from "lru-cache";
import type { Identity, User } from "../store/model.ts";

export type CachedUser = Pick<User, "user_id" | "contact_id">;
export type CachedIdentity = Pick<Identity, "identity_id" | "identifier" | "type" | "protocol" | "status">;
export interface CachedMessageRef {
  message_id: string;
  discussion_id: string;
}

export interface InboundCacheLimits {
  /** How long the user, an identity or a contact lookup is trusted before it is read again. */
  ttlMs: number;
  maxIdentities: number;
  maxContacts: number;
  maxMessageIds: number;
}

export const DEFAULT_INBOUND_CACHE_LIMITS: InboundCacheLimits = { ttlMs: 10_000, maxIdentities: 32, maxContacts: 64, maxMessageIds: 64 };

/** Shared by the imports of one user, which may run side by side. Times are epoch milliseconds. */
export class InboundCache {
  private cachedUser: { value: CachedUser; read_at: number } | null = null;
  private readonly identities: LRUCache<string, CachedIdentity>;
  /** Address → contact ids (empty: no contact). */
  private readonly contacts: LRUCache<string, string[]>;
  /** External id → message. */
  private readonly messageIds: LRUCache<string, CachedMessageRef>;

  constructor(
    private readonly limits: InboundCacheLimits = DEFAULT_INBOUND_CACHE_LIMITS,
    private readonly now: () => number = Date.now,
  ) {
    // ttlResolution 0: the cache's own clock would otherwise keep an expired entry for a tick.
    const timed = { ttl: limits.ttlMs, ttlResolution: 0, perf: { now } };
    this.identities = new LRUCache({ max: limits.maxIdentities, ...timed });
    this.contacts = new LRUCache({ max: limits.maxContacts, ...timed });
    this.messageIds = new LRUCache({ max: limits.maxMessageIds });
  }

  /** The user, from memory when read lately (a user that does not exist is read again every time). */
  async user(userId: string, read: () => Promise<User | null>): Promise<CachedUser | null> {
    const known = this.cachedUser;
    const age = known === null ? -1 : this.now() - known.read_at;
    if (known !== null && known.value.user_id === userId && age >= 0 && age <= this.limits.ttlMs) return known.value;
    const user = await read();
    this.cachedUser = user === null ? null : { value: { user_id: user.user_id, contact_id: user.contact_id }, read_at: this.now() };
    return this.cachedUser?.value ?? null;
  }

  /**
   * The identity, from memory when it was read lately and `usable` takes it; otherwise read again (a
   * miss, or what would be a refusal, is always decided on a fresh read).
   */
  async identity(identityId: string, usable: (identity: CachedIdentity) => boolean, read: () => Promise<Identity | null>): Promise<CachedIdentity | null> {
    const known = this.identities.get(identityId);
    if (known !== undefined && usable(known)) return known;
    const identity = await read();
    this.identities.delete(identityId);
    if (identity === null) return null;
    const value: CachedIdentity = {
      identity_id: identity.identity_id,
      identifier: identity.identifier,
      type: identity.type,
      protocol: identity.protocol,
      status: identity.status,
    };
    this.identities.set(identityId, value);
    return value;
  }

  /** The contact ids of an address, from memory when looked up lately. */
  async contactIds(address: string, read: () => Promise<string[]>): Promise<string[]> {
    const known = this.contacts.get(address);
    if (known !== undefined) return known;
    const ids = await read();
    this.contacts.set(address, ids);
    return ids;
  }

  /** A message stored lately under this external id (null: not remembered, which says nothing). */
  messageRef(externalId: string): CachedMessageRef | null {
    return this.messageIds.get(externalId) ?? null;
  }

  rememberMessage(externalId: string, message: CachedMessageRef): void {
    this.messageIds.set(externalId, { message_id: message.message_id, discussion_id: message.discussion_id });
  }

  /** Drops what memory says of an identity (e.g. after a failed import that named it). */
  forgetIdentity(identityId: string): void {
    this.identities.delete(identityId);
  }
}
