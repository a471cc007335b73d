// The schemas registered with Fastify by their $id, for routes to `$ref`. The OpenAPI document numbers
// them in this order (def-0, def-1, ...): reordering them changes docs/openapi.json.

import { errorSchema } from "./common.ts";
import { contactSchema } from "./contacts.ts";
import { discussionSchema } from "./discussions.ts";
import { identitySchema } from "./identities.ts";
import { publicKeySchema } from "./keys.ts";
import { messageSchema } from "./messages.ts";
import { notificationSchema } from "./notifications.ts";

export const SHARED_SCHEMAS = [errorSchema, identitySchema, contactSchema, publicKeySchema, messageSchema, discussionSchema, notificationSchema];
