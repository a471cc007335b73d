// JSON schema of the user's notifications as the API shows them, made from the contract's payload
// fields (contract/events-table.ts) so that the two cannot drift apart.

import { MAX_NOTIFICATION_ELEMENTS, NOTIFICATION_ELEMENT_FIELDS, NOTIFICATION_FIELDS } from "../../contract/events-table.ts";
import type { PayloadSchema } from "../../runtime/payload-schema.ts";

/** A notification (contract/events-table.ts) as the API shows it: with its stream sequence. */
export const notificationSchema = {
  $id: "Notification",
  type: "object",
  properties: {
    seq: { type: "integer", description: "its place in the history: the event stream's `id`, and what `since` and `before` take" },
    ...jsonSchemaOf(NOTIFICATION_FIELDS),
    elements: {
      type: "array",
      maxItems: MAX_NOTIFICATION_ELEMENTS,
      description: `one entry per message, when \`size\` is at most ${MAX_NOTIFICATION_ELEMENTS}`,
      items: { type: "object", properties: jsonSchemaOf(NOTIFICATION_ELEMENT_FIELDS) },
    },
  },
} as const;

/** The JSON schema properties of a contract payload's fields. */
function jsonSchemaOf(fields: PayloadSchema): Record<string, Record<string, unknown>> {
  const properties: Record<string, Record<string, unknown>> = {};
  for (const [name, field] of Object.entries(fields)) {
    properties[name] = {
      type: field.type === "number" ? "integer" : field.type === "decimal" ? "string" : field.type,
      ...(field.description !== undefined && { description: field.description }),
      ...(field.enum !== undefined && { enum: [...field.enum] }),
    };
  }
  return properties;
}
