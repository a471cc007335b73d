// What the store keeps of a parsed public key on a contact: the key's own facts, and whose it is, under
// which label, and where it came from (an upload or a discovery).
import { type PublicKey, SCHEMA_VERSION } from "../store/model.ts";
import type { ParsedPublicKey } from "./parse-public-key.ts";

export function storedPublicKey(
  parsed: ParsedPublicKey,
  owner: Pick<PublicKey, "user_id" | "resource_id" | "label" | "source">,
  at: Date = new Date(),
): PublicKey {
  return {
    schema: SCHEMA_VERSION,
    ...owner,
    key_id: parsed.key_id,
    fingerprint: parsed.fingerprint,
    armored: parsed.armored,
    expire_date: parsed.expire_date,
    size: parsed.size,
    algorithm: parsed.algorithm,
    emails: parsed.emails,
    date_insert: at.toISOString(),
  };
}
