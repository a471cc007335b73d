// Secrets at rest: AES-256-GCM under keys from configuration. A box holds one or several keys: the
// first seals, every one opens, so a deployment can roll a new key out before sealing with it. A sealed
// secret names the key it was sealed with (a short fingerprint), so a node configured with another key
// says so instead of failing with an opaque authentication error, and it is bound to associated data
// the caller chooses (what it belongs to), so it does not open anywhere else.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";

/** The format `seal` writes: 2 binds the caller's associated data. Secrets without `v` were sealed before, without any. */
export const SEALED_FORMAT = 2;

export interface SealedSecret {
  /** Format version; absent on secrets sealed before associated data (they open without it). */
  v?: number;
  /** Fingerprint of the key (first 8 bytes of its sha256, hex). */
  kid: string;
  iv: string;
  tag: string;
  data: string;
}

/** A sealed secret that these keys cannot open: its key is not among them, or it is not authentic here. */
export class SecretNotOpened extends Error {
  override readonly name = "SecretNotOpened";
  constructor(
    message: string,
    /** The key id the secret names. */
    readonly kid: string,
  ) {
    super(message);
  }
}

/** A key's public name: the first 8 bytes of its sha256, in hex. Safe to log; the key is not. */
export function secretKeyId(key: Buffer): string {
  return createHash("sha256").update(key).digest("hex").slice(0, 16);
}

export class SecretBox {
  /** Id of the key that seals (the first). */
  readonly kid: string;
  /** Ids of every key, the sealing one first. */
  readonly kids: readonly string[];
  private readonly keys: ReadonlyMap<string, Buffer>;

  constructor(keys: Buffer | readonly Buffer[]) {
    const list = Buffer.isBuffer(keys) ? [keys] : [...keys];
    if (list.length === 0) throw new Error("no secret key given");
    const byKid = new Map<string, Buffer>();
    list.forEach((key, index) => {
      if (key.length !== 32) {
        throw new Error(`${list.length === 1 ? "a secret key" : `secret key ${index + 1} of ${list.length}`} must be 32 bytes, got ${key.length}`);
      }
      const kid = secretKeyId(key);
      if (!byKid.has(kid)) byKid.set(kid, Buffer.from(key));
    });
    this.keys = byKid;
    this.kids = [...byKid.keys()];
    this.kid = this.kids[0] as string;
  }

  /** Keys separated by commas or newlines, each as 64 hex digits or as base64 of 32 bytes; the first seals. */
  static fromText(text: string): SecretBox {
    const keys = text
      .split(/[,\r\n]+/)
      .map((part) => part.trim())
      .filter((part) => part !== "")
      .map((part) => (/^[0-9a-fA-F]{64}$/.test(part) ? Buffer.from(part, "hex") : Buffer.from(part, "base64")));
    return new SecretBox(keys);
  }

  static generateKeyText(): string {
    return randomBytes(32).toString("base64");
  }

  /** Seals under the first key, bound to `aad` (what the secret belongs to): it opens only with the same `aad`. */
  seal(plaintext: string, aad: string): SealedSecret {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.keys.get(this.kid) as Buffer, iv);
    cipher.setAAD(associatedData(SEALED_FORMAT, aad));
    const data = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    return { v: SEALED_FORMAT, kid: this.kid, iv: iv.toString("base64"), tag: cipher.getAuthTag().toString("base64"), data: data.toString("base64") };
  }

  /** Opens with whichever key sealed it; throws SecretNotOpened when none of these keys did, or it was sealed for another `aad`. */
  open(sealed: SealedSecret, aad: string): string {
    const key = this.keys.get(sealed.kid);
    if (key === undefined) {
      throw new SecretNotOpened(
        `this secret was sealed with key ${sealed.kid}, but the keys here are ${this.kids.join(", ")} (every node must share CALIOPEN_SECRET_KEY)`,
        sealed.kid,
      );
    }
    if (sealed.v !== undefined && sealed.v !== SEALED_FORMAT)
      throw new SecretNotOpened(`this secret has format ${String(sealed.v)}, which this version cannot open`, sealed.kid);
    try {
      const decipher = createDecipheriv("aes-256-gcm", key, Buffer.from(sealed.iv, "base64"));
      // Secrets sealed before format 2 carry no associated data: they open as they were sealed.
      if (sealed.v !== undefined) decipher.setAAD(associatedData(sealed.v, aad));
      decipher.setAuthTag(Buffer.from(sealed.tag, "base64"));
      return Buffer.concat([decipher.update(Buffer.from(sealed.data, "base64")), decipher.final()]).toString("utf8");
    } catch {
      throw new SecretNotOpened(`the secret sealed with key ${sealed.kid} does not open: it was altered, or it was sealed for something else`, sealed.kid);
    }
  }

  /** Sealed under the sealing key in the current format: nothing to re-seal. */
  isCurrent(sealed: SealedSecret): boolean {
    return sealed.v === SEALED_FORMAT && sealed.kid === this.kid;
  }
}

/** The format is authenticated too, so a secret cannot be passed off as one of another format. */
function associatedData(format: number, aad: string): Buffer {
  return Buffer.from(`secret-box/v${format}\n${aad}`, "utf8");
}
