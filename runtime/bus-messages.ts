// Which messages from the bus an actor takes: only the types its family declares in `accepts` (its
// orders), with a payload that passes the declared schema. Anything else — a forged `sync.done` that
// would move a cursor, a made-up deadline — is the node's own business and is refused.
import type { ActorMessage } from "./actor-family.ts";
import { type PayloadSchema, validatePayload } from "./payload-schema.ts";

export type Accepted = Readonly<Record<string, PayloadSchema>>;

/** Types longer than this are cut in error messages. */
const SHOWN_TYPE_CHARS = 64;

/**
 * Why this message from the bus must not reach an actor of `kind`, or null when it may; on success the
 * payload has passed the schema declared for its type.
 */
export function busMessageProblem(kind: string, accepts: Accepted, message: Pick<ActorMessage, "type" | "payload">): string | null {
  const type: unknown = message.type;
  if (typeof type !== "string" || !Object.hasOwn(accepts, type)) {
    const taken = Object.keys(accepts);
    const shown = typeof type === "string" ? JSON.stringify(type.length > SHOWN_TYPE_CHARS ? `${type.slice(0, SHOWN_TYPE_CHARS)}…` : type) : String(type);
    return taken.length === 0
      ? `${kind} actors take no messages from the bus (${shown} refused)`
      : `${kind} actors do not take ${shown} from the bus (they take: ${taken.join(", ")})`;
  }
  const valid = validatePayload(accepts[type] as PayloadSchema, message.payload);
  return valid.ok ? null : `invalid ${type} for a ${kind} actor: ${valid.message}`;
}
