// Who holds an identifier ((protocol, address) → the users' identities that have it), as one KV entry per
// identifier kept by compare-and-swap, so the inbound SMTP server's lookup at every RCPT TO is one read
// whatever the store holds. Entries made before it existed are found once by the older listing of
// per-user claims (Lookups.targetsWithKeys), then written here whole (`complete`).
import { DocumentContention, DocumentExists, type KvDocuments } from "../../runtime/kv-documents.ts";
import { Conflict } from "./errors.ts";
import { hashed, type Lookups } from "./lookups.ts";

export interface Holder {
  user_id: string;
  identity_id: string;
}

export interface HoldersDoc {
  holders: Holder[];
  /** Also holds what was claimed before this entry was kept (see byIdentifier's first read). */
  complete: boolean;
}

/** Identities of different users holding one identifier, at most: past it a new one is refused. */
export const MAX_HOLDERS = 1_000;
const ROUNDS = 10;

export class IdentifierHolders {
  constructor(
    private readonly docs: KvDocuments<HoldersDoc>,
    private readonly lookups: Lookups,
    /** The per-user claim keys under an identifier, as written by IdentityStore (`identifier.<protocol>.<hash>.`). */
    private readonly claimPrefix: (protocol: string, identifier: string) => string,
  ) {}

  /** Adds a holder; Conflict when MAX_HOLDERS hold it already. */
  async add(protocol: string, identifier: string, holder: Holder): Promise<void> {
    await this.change(protocol, identifier, (holders) => {
      if (holders.some((known) => known.identity_id === holder.identity_id && known.user_id === holder.user_id)) return null;
      if (holders.length >= MAX_HOLDERS) throw new Conflict(`${MAX_HOLDERS} identities hold this identifier already`);
      return [...holders, holder];
    });
  }

  async remove(protocol: string, identifier: string, holder: Holder): Promise<void> {
    await this.change(protocol, identifier, (holders) => {
      const kept = holders.filter((known) => !(known.identity_id === holder.identity_id && known.user_id === holder.user_id));
      return kept.length === holders.length ? null : kept;
    });
  }

  /** The holders: one read, plus once per identifier the claims made before the entry was kept. */
  async holders(protocol: string, identifier: string): Promise<Holder[]> {
    const key = holdersKey(protocol, identifier);
    const found = await this.docs.get(key);
    if (found?.value.complete) return found.value.holders;
    const prefix = this.claimPrefix(protocol, identifier);
    const claimed = (await this.lookups.targetsWithKeys(`${prefix}*`)).map(({ key: claimKey, target }) => ({
      user_id: claimKey.slice(prefix.length),
      identity_id: target,
    }));
    const whole = (holders: Holder[]): HoldersDoc => ({ holders: union(holders, claimed).slice(0, MAX_HOLDERS), complete: true });
    if (found === null) {
      try {
        await this.docs.create(key, whole([]));
        return whole([]).holders;
      } catch (err) {
        if (!(err instanceof DocumentExists)) throw err;
      }
    }
    return (await this.docs.update(key, (current) => (current.complete ? null : whole(current.holders))))?.holders ?? whole([]).holders;
  }

  private async change(protocol: string, identifier: string, edit: (holders: Holder[]) => Holder[] | null): Promise<void> {
    const key = holdersKey(protocol, identifier);
    for (let round = 0; round < ROUNDS; round++) {
      const updated = await this.docs.update(key, (current) => {
        const holders = edit(current.holders);
        return holders === null ? null : { ...current, holders };
      });
      if (updated !== null) return;
      const holders = edit([]);
      if (holders === null) return;
      try {
        await this.docs.create(key, { holders, complete: false });
        return;
      } catch (err) {
        if (!(err instanceof DocumentExists)) throw err;
      }
    }
    throw new DocumentContention(`${key} kept changing under its writers`);
  }
}

const holdersKey = (protocol: string, identifier: string) => `holders.${protocol}.${hashed(identifier)}`;

function union(holders: Holder[], more: Holder[]): Holder[] {
  const out = [...holders];
  for (const holder of more) if (!out.some((known) => known.identity_id === holder.identity_id && known.user_id === holder.user_id)) out.push(holder);
  return out;
}
