// Secrets at rest: AES-256-GCM with a key from configuration. A sealed secret names the key it was
// sealed with (a short fingerprint), so a node configured with another key says so instead of failing
// with an opaque authentication error.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";

export interface SealedSecret {
  /** Fingerprint of the key (first 8 bytes of its sha256, hex). */
  kid: string;
  iv: string;
  tag: string;
  data: string;
}

export class SecretBox {
  readonly kid: string;

  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new Error(`a secret key must be 32 bytes, got ${key.length}`);
    this.kid = createHash("sha256").update(key).digest("hex").slice(0, 16);
  }

  /** A key given as 64 hex digits or as base64 of 32 bytes. */
  static fromText(text: string): SecretBox {
    const trimmed = text.trim();
    const key = /^[0-9a-fA-F]{64}$/.test(trimmed) ? Buffer.from(trimmed, "hex") : Buffer.from(trimmed, "base64");
    return new SecretBox(key);
  }

  static generateKeyText(): string {
    return randomBytes(32).toString("base64");
  }

  seal(plaintext: string): SealedSecret {
    const iv = randomBytes(12);
    const cipher = createCipheriv("aes-256-gcm", this.key, iv);
    const data = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
    return { kid: this.kid, iv: iv.toString("base64"), tag: cipher.getAuthTag().toString("base64"), data: data.toString("base64") };
  }

  open(sealed: SealedSecret): string {
    if (sealed.kid !== this.kid) {
      throw new Error(`this secret was sealed with key ${sealed.kid}, but this node has key ${this.kid} (every node must share CALIOPEN_SECRET_KEY)`);
    }
    const decipher = createDecipheriv("aes-256-gcm", this.key, Buffer.from(sealed.iv, "base64"));
    decipher.setAuthTag(Buffer.from(sealed.tag, "base64"));
    return Buffer.concat([decipher.update(Buffer.from(sealed.data, "base64")), decipher.final()]).toString("utf8");
  }
}
