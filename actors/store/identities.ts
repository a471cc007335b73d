// Identities: a user's own addresses (local) and the remote accounts Caliopen syncs (remote). Their
// credentials are sealed with the deployment's secret key, bound to their user and identity (a sealed
// blob copied into another identity does not open), and only ever leave the store through
// `credentials()`, for the bridge that logs in with them.
import { randomUUID } from "node:crypto";
import type { KvDocuments } from "../../runtime/kv-documents.ts";
import type { SealedSecret, SecretBox } from "../../runtime/secret-box.ts";
import { Conflict } from "./errors.ts";
import type { IdentifierHolders } from "./identifier-holders.ts";
import { ListedDocuments } from "./listed-documents.ts";
import { type ListedPage, readListingPage } from "./listing-page.ts";
import { byCodeUnits, type Listings, pickFromEvery, userToken } from "./listings.ts";
import { hashed, type Lookups } from "./lookups.ts";
import { type Credentials, type Identity, type IdentityInfos, type IdentityProtocol, type IdentityStatus, type IdentityType, SCHEMA_VERSION } from "./model.ts";
import { MAX_PAGE_LIMIT } from "./paging.ts";
import { countSealed, type ResealReport, resealEvery, type SealedCount } from "./sealed-documents.ts";
import type { Order, Position, SortedIndex } from "./sorted-index.ts";

/** An identity as kept in KV: the public part plus the sealed credentials. */
export interface StoredIdentity extends Identity {
  sealed_credentials?: SealedSecret | null;
}

export interface NewIdentity {
  user_id: string;
  type: IdentityType;
  protocol: IdentityProtocol;
  identifier: string;
  display_name?: string;
  status?: IdentityStatus;
  infos?: IdentityInfos;
  credentials?: Credentials | null;
}

/** Poll interval defaults in minutes (docs/decisions.md §4). */
export function defaultPollInterval(protocol: IdentityProtocol): string {
  return protocol === "twitter" ? "2" : "15";
}

export class IdentityStore {
  private readonly listed: ListedDocuments<StoredIdentity>;

  constructor(
    private readonly docs: KvDocuments<StoredIdentity>,
    private readonly lookups: Lookups,
    /** null where credentials are not needed (the operator CLI): sealing or opening them then fails. */
    private readonly box: SecretBox | null,
    private readonly listings: Listings,
    private readonly holders: IdentifierHolders,
  ) {
    this.listed = new ListedDocuments(docs, (identity) => ({ index: this.index(identity.user_id), position: positionOf(identity) }));
  }

  /** Stores a new identity; (protocol, identifier) is unique per user. */
  async create(fields: NewIdentity): Promise<Identity> {
    const now = new Date().toISOString();
    const identifier = fields.identifier.trim().toLowerCase();
    const identityId = randomUUID();
    const stored: StoredIdentity = {
      schema: SCHEMA_VERSION,
      user_id: fields.user_id,
      identity_id: identityId,
      type: fields.type,
      protocol: fields.protocol,
      identifier,
      display_name: fields.display_name ?? "",
      status: fields.status ?? "active",
      infos: { ...(fields.type === "remote" && { poll_interval: defaultPollInterval(fields.protocol) }), ...fields.infos },
      has_credentials: fields.credentials != null,
      sealed_credentials:
        fields.credentials == null ? null : this.secrets().seal(JSON.stringify(fields.credentials), credentialsAad(fields.user_id, identityId)),
      date_insert: now,
      date_update: now,
    };
    const lookup = identifierKey(stored.protocol, identifier, stored.user_id);
    if (!(await this.lookups.claim(lookup, stored.identity_id))) {
      throw new Conflict(`user already has a ${stored.protocol} identity "${identifier}"`);
    }
    // Named as a holder before it exists: a crash in between leaves a holder that reads as no identity.
    try {
      await this.holders.add(stored.protocol, identifier, { user_id: stored.user_id, identity_id: stored.identity_id });
    } catch (err) {
      await this.lookups.release(lookup).catch(() => undefined);
      throw err;
    }
    await this.listed.create(docKey(stored.user_id, stored.identity_id), stored);
    return publicPart(stored);
  }

  async get(userId: string, identityId: string): Promise<Identity | null> {
    const found = await this.docs.get(docKey(userId, identityId));
    return found === null ? null : publicPart(found.value);
  }

  /** The user's identities (deleted ones only when asked), oldest first, from the user's sorted index. */
  async list(userId: string, options: { type?: IdentityType; includeDeleted?: boolean } = {}): Promise<Identity[]> {
    const index = this.index(userId);
    await this.listings.ensureBuilt(index.tree, async () => {
      const now = Date.now();
      await index.insert(await pickFromEvery(this.docs, `${keyToken(userId)}.*`, (identity) => [...positionOf(identity), now] as const));
    });
    const found: StoredIdentity[] = [];
    let after: Position | null = null;
    do {
      const page: ListedPage<StoredIdentity> = await readListingPage(
        { indexes: [index], load: (id) => this.stored(userId, id), placeOf: (identity) => ({ tree: index.tree, position: positionOf(identity) }) },
        { offset: 0, limit: MAX_PAGE_LIMIT, after },
      );
      found.push(...page.items);
      after = page.next;
    } while (after !== null);
    return select(found, options);
  }

  /** Every user's identities: what the identities worker rebuilds its schedules from. */
  async listAll(options: { type?: IdentityType; includeDeleted?: boolean } = {}): Promise<Identity[]> {
    return select(await this.docs.values(), options);
  }

  /** Identities of any user with this (protocol, identifier), e.g. who receives mail for an address: one read, then theirs. */
  async byIdentifier(protocol: IdentityProtocol, identifier: string): Promise<Identity[]> {
    await this.ensureHoldersBuilt();
    const holders = await this.holders.holders(protocol, identifier.trim().toLowerCase());
    const found = await Promise.all(holders.map((holder) => this.get(holder.user_id, holder.identity_id)));
    return found.filter((identity): identity is Identity => identity !== null && identity.status !== "deleted");
  }

  /**
   * Changes an identity by compare-and-swap. `change` gets the current public part and returns the
   * fields to change (or null for no change); `credentials` replaces the stored ones when given.
   */
  async update(
    userId: string,
    identityId: string,
    change: (current: Identity) => { fields?: Partial<Pick<Identity, "display_name" | "status" | "infos">>; credentials?: Credentials } | null,
  ): Promise<Identity | null> {
    const updated = await this.docs.update(docKey(userId, identityId), (current) => {
      const wanted = change(publicPart(current));
      if (wanted === null) return null;
      return {
        ...current,
        ...wanted.fields,
        ...(wanted.credentials !== undefined && {
          sealed_credentials: this.secrets().seal(JSON.stringify(wanted.credentials), credentialsAad(current.user_id, current.identity_id)),
          has_credentials: true,
        }),
        date_update: new Date().toISOString(),
      };
    });
    return updated === null ? null : publicPart(updated);
  }

  /**
   * Replaces the credentials by compare-and-swap (a bridge storing a refreshed token): `swap` gets the
   * stored ones and returns their replacement, or null to keep them (another refresh came first).
   * Resolves to what is stored afterwards; null when the identity is gone or holds none. Never log it.
   */
  async swapCredentials(userId: string, identityId: string, swap: (current: Credentials) => Credentials | null): Promise<Credentials | null> {
    const aad = credentialsAad(userId, identityId);
    const stored = await this.docs.update(docKey(userId, identityId), (current) => {
      if (current.status === "deleted" || current.sealed_credentials == null) return null;
      const next = swap(JSON.parse(this.secrets().open(current.sealed_credentials, aad)) as Credentials);
      // Sync state of the bridge's, not a change by the user: date_update stays.
      return next === null ? null : { ...current, sealed_credentials: this.secrets().seal(JSON.stringify(next), aad) };
    });
    if (stored === null || stored.status === "deleted" || stored.sealed_credentials == null) return null;
    return JSON.parse(this.secrets().open(stored.sealed_credentials, aad)) as Credentials;
  }

  /** Merges into `infos` (sync state, schedule, last error) without touching the rest. */
  async updateInfos(userId: string, identityId: string, infos: Partial<IdentityInfos>): Promise<Identity | null> {
    // Sync state written by services, not a change by the user: date_update stays.
    const updated = await this.docs.update(docKey(userId, identityId), (current) => ({ ...current, infos: { ...current.infos, ...infos } }));
    return updated === null ? null : publicPart(updated);
  }

  /** Marks it deleted, drops its credentials and frees its identifier. */
  async markDeleted(userId: string, identityId: string): Promise<Identity | null> {
    const updated = await this.docs.update(docKey(userId, identityId), (current) =>
      current.status === "deleted"
        ? null
        : { ...current, status: "deleted", sealed_credentials: null, has_credentials: false, date_update: new Date().toISOString() },
    );
    if (updated === null) return null;
    // Only while it still points here: once deleted, the identifier may belong to a re-created identity.
    const lookup = identifierKey(updated.protocol, updated.identifier, userId);
    if ((await this.lookups.get(lookup)) === updated.identity_id) await this.lookups.release(lookup);
    await this.holders.remove(updated.protocol, updated.identifier, { user_id: updated.user_id, identity_id: updated.identity_id });
    return publicPart(updated);
  }

  /** The decrypted credentials, for the bridge that logs in with them. Never log the result. */
  async credentials(userId: string, identityId: string): Promise<Credentials | null> {
    const found = await this.docs.get(docKey(userId, identityId));
    const sealed = found?.value.sealed_credentials;
    if (sealed == null) return null;
    return JSON.parse(this.secrets().open(sealed, credentialsAad(userId, identityId))) as Credentials;
  }

  /**
   * Seals every identity's credentials again under the sealing key, in the current format (bound to
   * the identity), each by compare-and-swap: safe to run while nodes work and to run again.
   */
  async resealCredentials(): Promise<ResealReport> {
    return resealEvery(this.docs, this.secrets(), {
      sealedOf: (identity) =>
        identity.sealed_credentials == null ? null : { sealed: identity.sealed_credentials, aad: credentialsAad(identity.user_id, identity.identity_id) },
      withSealed: (identity, sealed) => ({ ...identity, sealed_credentials: sealed }),
    });
  }

  /** How many credentials are sealed under each key id and format (key ids only: no key is needed). */
  async sealedCounts(): Promise<SealedCount[]> {
    return countSealed(this.docs, (identity) => identity.sealed_credentials);
  }

  /**
   * Identities stored by an earlier version have no holders entry: once per deployment, every identity
   * not deleted is added (adding is idempotent, so processes doing it at once, or creating meanwhile, do no harm).
   */
  private async ensureHoldersBuilt(): Promise<void> {
    await this.listings.ensureBuilt("identifier-holders", async () => {
      const held = await pickFromEvery(this.docs, ">", (identity) => (identity.status === "deleted" ? null : identity));
      for (const identity of held) {
        if (identity === null) continue;
        await this.holders
          .add(identity.protocol, identity.identifier, { user_id: identity.user_id, identity_id: identity.identity_id })
          .catch((err: unknown) => {
            if (!(err instanceof Conflict)) throw err;
          });
      }
    });
  }

  private async stored(userId: string, identityId: string): Promise<StoredIdentity | null> {
    return (await this.docs.get(docKey(userId, identityId)))?.value ?? null;
  }

  private index(userId: string): SortedIndex {
    return this.listings.index(`i.${userToken(userId)}`, oldestFirst);
  }

  private secrets(): SecretBox {
    if (this.box === null) throw new Error("no secret key is configured here, so credentials cannot be sealed or read");
    return this.box;
  }
}

function publicPart(stored: StoredIdentity): Identity {
  const { sealed_credentials: _sealed, ...identity } = stored;
  return identity;
}

function select(all: StoredIdentity[], options: { type?: IdentityType; includeDeleted?: boolean }): Identity[] {
  return all
    .filter((identity) => (options.type === undefined || identity.type === options.type) && (options.includeDeleted || identity.status !== "deleted"))
    .map(publicPart)
    .sort((a, b) => a.date_insert.localeCompare(b.date_insert));
}

/** What sealed credentials are bound to: their purpose, user and identity (JSON, so no two differ only in where a separator falls). */
const credentialsAad = (userId: string, identityId: string) => JSON.stringify(["caliopen identity credentials", userId, identityId]);

/** By date of creation, then id. */
const oldestFirst: Order = (a, b) => byCodeUnits(a[0], b[0]) || byCodeUnits(a[1], b[1]);
const positionOf = (identity: Identity): Position => [identity.date_insert, identity.identity_id];

/** The per-user claim keys of an identifier start so (see identifierKey): what the earlier RCPT lookup listed. */
export const identifierClaimPrefix = (protocol: string, identifier: string) => `identifier.${protocol}.${hashed(identifier)}.`;
const keyToken = (id: string) => id.replace(/[^A-Za-z0-9_-]/g, "_");
const docKey = (userId: string, identityId: string) => `${keyToken(userId)}.${keyToken(identityId)}`;
const identifierKey = (protocol: string, identifier: string, userId: string) => `${identifierClaimPrefix(protocol, identifier)}${keyToken(userId)}`;
