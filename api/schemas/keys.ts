// JSON schemas of the user's contacts' OpenPGP public keys: the key a client adds, and the PublicKey
// the API returns.

import { text } from "./common.ts";

export const createKeyBody = {
  type: "object",
  additionalProperties: false,
  required: ["key"],
  properties: { key: { type: "string", minLength: 1, maxLength: 200_000, description: "one ASCII-armored OpenPGP public key" }, label: text(200) },
} as const;

export const publicKeySchema = {
  $id: "PublicKey",
  type: "object",
  additionalProperties: true,
  properties: {
    key_id: { type: "string" },
    resource_id: { type: "string" },
    user_id: { type: "string" },
    fingerprint: { type: "string" },
    armored: { type: "string" },
    expire_date: { type: ["string", "null"] },
    label: { type: "string" },
    size: { type: "integer" },
    algorithm: { type: "string" },
    emails: { type: "array", items: { type: "string" } },
    source: { type: "string" },
    date_insert: { type: "string" },
  },
} as const;
