// Who receives mail for an address here: the active local identities that have it, which the inbound
// SMTP server asks at every RCPT TO. An address found is remembered for a few seconds, so that a burst
// of mail for one recipient asks the store once (the lookup lists the lookup bucket's keys under the
// address, which costs the NATS server more than a read). An address not found is asked again every
// time: a new user receives mail at once. An identity deleted meanwhile may still be named for those
// few seconds; its import then refuses the mail and the sender is told to retry.
import { LRUCache } from "lru-cache";
import type { Identity } from "../store/model.ts";
import type { Store } from "../store/store.ts";

export interface LocalRecipientLimits {
  ttlMs: number;
  /** Addresses remembered at most (the least recently used go first). */
  maxAddresses: number;
}

export const DEFAULT_LOCAL_RECIPIENT_LIMITS: LocalRecipientLimits = { ttlMs: 5_000, maxAddresses: 10_000 };

export class LocalRecipients {
  private readonly found: LRUCache<string, Identity[]>;

  constructor(
    private readonly store: Store,
    limits: LocalRecipientLimits = DEFAULT_LOCAL_RECIPIENT_LIMITS,
    now: () => number = () => performance.now(),
  ) {
    this.found = new LRUCache({ max: limits.maxAddresses, ttl: limits.ttlMs, ttlResolution: 0, perf: { now } });
  }

  /** The active local identities receiving mail for `address` (lower-cased, trimmed); none: not ours. */
  async lookup(address: string): Promise<Identity[]> {
    const known = this.found.get(address);
    if (known !== undefined) return known;
    const identities = (await this.store.identities.byIdentifier("email", address)).filter(
      (identity) => identity.type === "local" && identity.status === "active",
    );
    if (identities.length > 0) this.found.set(address, identities);
    return identities;
  }
}
