// The deployment's record of which secret key it uses: a known text sealed under that key, written once
// by the first node to start (create-only, so two first nodes racing agree on one) and opened by every
// node after. A node whose keys cannot open it refuses to start, instead of sealing credentials that
// the other nodes cannot open. `caliopen secrets rotate` moves it to a new key.
import { DocumentExists, type KvDocuments } from "../../runtime/kv-documents.ts";
import { type SealedSecret, type SecretBox, SecretNotOpened } from "../../runtime/secret-box.ts";
import type { IdentityStore } from "./identities.ts";

export interface KeyCheckDocument {
  schema: 1;
  sealed: SealedSecret;
  date_update: string;
}

const CHECK_KEY = "secret_key_check";
const CHECK_TEXT = "caliopen secret key check";
const CHECK_AAD = "caliopen deployment secret key check";

/** The keys given here cannot open the deployment's key check (the message names key ids, never keys). */
export class SecretKeyMismatch extends Error {
  override readonly name = "SecretKeyMismatch";
  constructor(
    /** The key the deployment uses. */
    readonly deploymentKid: string,
    /** The keys given here. */
    readonly kids: readonly string[],
    why = "recorded in its key check",
  ) {
    super(
      `the deployment's secret key is ${deploymentKid} (${why}), but the key${kids.length === 1 ? "" : "s"} given here ${kids.length === 1 ? "is" : "are"} ${kids.join(", ")}: every node needs the deployment's key in CALIOPEN_SECRET_KEY or CALIOPEN_SECRET_KEY_FILE`,
    );
  }
}

export class SecretKeyCheck {
  constructor(
    private readonly docs: KvDocuments<KeyCheckDocument>,
    private readonly identities: IdentityStore,
  ) {}

  /** The key id the check is recorded under, or null when none is recorded yet. */
  async recordedKid(): Promise<string | null> {
    return (await this.docs.get(CHECK_KEY))?.value.sealed.kid ?? null;
  }

  /** Whether `box` opens the recorded check (null: nothing recorded). */
  async opensWith(box: SecretBox): Promise<boolean | null> {
    const found = await this.docs.get(CHECK_KEY);
    return found === null ? null : opens(found.value, box);
  }

  /**
   * Throws SecretKeyMismatch unless `box` opens the recorded check; records it under `box`'s sealing
   * key when there is none yet. Resolves to the key id it is recorded under.
   */
  async verify(box: SecretBox): Promise<{ kid: string; recordedNow: boolean }> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const found = await this.docs.get(CHECK_KEY);
      if (found !== null) {
        if (!opens(found.value, box)) throw new SecretKeyMismatch(found.value.sealed.kid, box.kids);
        return { kid: found.value.sealed.kid, recordedNow: false };
      }
      await this.refuseForeignMajority(box);
      try {
        await this.docs.create(CHECK_KEY, checkDocument(box));
        return { kid: box.kid, recordedNow: true };
      } catch (err) {
        // Another first node recorded it meanwhile: check against theirs.
        if (!(err instanceof DocumentExists)) throw err;
      }
    }
    throw new Error("the deployment's secret key check kept appearing and disappearing");
  }

  /** Records the check under `box`'s sealing key, once `box` opens the current one (compare-and-swap). */
  async rerecord(box: SecretBox): Promise<void> {
    await this.verify(box);
    await this.docs.update(CHECK_KEY, (current) => {
      if (!opens(current, box)) throw new SecretKeyMismatch(current.sealed.kid, box.kids);
      return box.isCurrent(current.sealed) ? null : checkDocument(box);
    });
  }

  /**
   * A deployment from before key checks has credentials but no check: the first node to record one
   * must hold the key most of them are sealed with, or a node with a key of its own would impose it.
   */
  private async refuseForeignMajority(box: SecretBox): Promise<void> {
    const byKid = new Map<string, number>();
    for (const { kid, count } of await this.identities.sealedCounts()) byKid.set(kid, (byKid.get(kid) ?? 0) + count);
    const [mostUsed] = [...byKid.entries()].sort((a, b) => b[1] - a[1]);
    if (mostUsed !== undefined && !box.kids.includes(mostUsed[0])) {
      throw new SecretKeyMismatch(mostUsed[0], box.kids, `no key check is recorded yet, and most stored credentials are sealed with it`);
    }
  }
}

function opens(check: KeyCheckDocument, box: SecretBox): boolean {
  try {
    return box.open(check.sealed, CHECK_AAD) === CHECK_TEXT;
  } catch (err) {
    if (err instanceof SecretNotOpened) return false;
    throw err;
  }
}

function checkDocument(box: SecretBox): KeyCheckDocument {
  return { schema: 1, sealed: box.seal(CHECK_TEXT, CHECK_AAD), date_update: new Date().toISOString() };
}
