// A secret sealed the way SecretBox did before format 2: AES-256-GCM without associated data and no
// format field. Stores written then still hold such secrets; tests make them with this.
import { createCipheriv, randomBytes } from "node:crypto";
import { type SealedSecret, secretKeyId } from "../../runtime/secret-box.ts";

export function legacySeal(key: Buffer, plaintext: string): SealedSecret {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  const data = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
  return { kid: secretKeyId(key), iv: iv.toString("base64"), tag: cipher.getAuthTag().toString("base64"), data: data.toString("base64") };
}
