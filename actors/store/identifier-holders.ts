// Who holds an identifier ((protocol, address) → the users' identities that have it), as one KV entry per
// identifier kept by compare-and-swap, so the inbound SMTP server's lookup at every RCPT TO is one read
// whatever the store holds. An identifier nobody holds has no entry: a lookup of an unknown address (the
// most common kind at RCPT TO) reads nothing back and writes nothing.
import { DocumentContention, DocumentExists, type KvDocuments } from "../../runtime/kv-documents.ts";
import { Conflict } from "./errors.ts";
import { hashed } from "./lookups.ts";

export interface Holder {
  user_id: string;
  identity_id: string;
}

export interface HoldersDoc {
  holders: Holder[];
}

/** Identities holding one identifier, at most: past it a new one is refused. */
export const MAX_HOLDERS = 1_000;
const ROUNDS = 10;

export class IdentifierHolders {
  constructor(private readonly docs: KvDocuments<HoldersDoc>) {}

  /** Adds a holder (already there: nothing to do); Conflict when MAX_HOLDERS hold it already. */
  async add(protocol: string, identifier: string, holder: Holder): Promise<void> {
    await this.change(protocol, identifier, (holders) => {
      if (holders.some((known) => same(known, holder))) return null;
      if (holders.length >= MAX_HOLDERS) throw new Conflict(`${MAX_HOLDERS} identities hold this identifier already`);
      return [...holders, holder];
    });
  }

  async remove(protocol: string, identifier: string, holder: Holder): Promise<void> {
    await this.change(protocol, identifier, (holders) => {
      const kept = holders.filter((known) => !same(known, holder));
      return kept.length === holders.length ? null : kept;
    });
  }

  async holders(protocol: string, identifier: string): Promise<Holder[]> {
    return (await this.docs.get(holdersKey(protocol, identifier)))?.value.holders ?? [];
  }

  private async change(protocol: string, identifier: string, edit: (holders: Holder[]) => Holder[] | null): Promise<void> {
    const key = holdersKey(protocol, identifier);
    for (let round = 0; round < ROUNDS; round++) {
      // An entry left empty stays (removing it could race with an add): at most one per identifier ever held.
      const updated = await this.docs.update(key, (current) => {
        const holders = edit(current.holders);
        return holders === null ? null : { holders };
      });
      if (updated !== null) return;
      const holders = edit([]);
      if (holders === null) return;
      try {
        await this.docs.create(key, { holders });
        return;
      } catch (err) {
        if (!(err instanceof DocumentExists)) throw err;
      }
    }
    throw new DocumentContention(`${key} kept changing under its writers`);
  }
}

const same = (a: Holder, b: Holder) => a.identity_id === b.identity_id && a.user_id === b.user_id;
const holdersKey = (protocol: string, identifier: string) => `holders.${protocol}.${hashed(identifier)}`;
