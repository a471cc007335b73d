// JSON schemas of contacts: what creating or patching one takes (names, addresses, social identities),
// and the Contact the API returns.

import { email, text } from "./common.ts";

const contactEmail = {
  type: "object",
  additionalProperties: false,
  required: ["address"],
  properties: { address: email, label: text(200), type: text(40), is_primary: { type: "boolean" } },
} as const;

const socialIdentity = {
  type: "object",
  additionalProperties: false,
  required: ["type", "name"],
  properties: { type: { type: "string", minLength: 1, maxLength: 40 }, name: { type: "string", minLength: 1, maxLength: 320 } },
} as const;

const contactFields = {
  title: text(400),
  given_name: text(200),
  family_name: text(200),
  emails: { type: "array", maxItems: 100, items: contactEmail },
  identities: { type: "array", maxItems: 100, items: socialIdentity },
} as const;

export const createContactBody = { type: "object", additionalProperties: false, minProperties: 1, properties: contactFields } as const;
export const patchContactBody = { type: "object", additionalProperties: false, minProperties: 1, properties: contactFields } as const;

export const contactSchema = {
  $id: "Contact",
  type: "object",
  additionalProperties: true,
  properties: {
    contact_id: { type: "string" },
    user_id: { type: "string" },
    title: { type: "string" },
    given_name: { type: "string" },
    family_name: { type: "string" },
    emails: { type: "array", items: { type: "object", additionalProperties: true } },
    identities: { type: "array", items: { type: "object", additionalProperties: true } },
    derived: { type: ["object", "null"], additionalProperties: true },
    date_insert: { type: "string" },
    date_update: { type: "string" },
  },
} as const;
