// What arrives on an actor's own subject (its mailbox): JSON `{type, payload}`, bounded like every bus
// message. A message without a `payload` object carries its fields beside `type`.
import type { ActorMessage } from "./actor-family.ts";
import { decodeBusJson, isJsonObject } from "./json.ts";

/** The message, or why it is not one (for an error reply or a dead letter). */
export function readMailboxMessage(data: Uint8Array, replyTo: string | undefined, actor: string): ActorMessage | string {
  const decoded = decodeBusJson(data);
  if (!decoded.ok) return decoded.error;
  if (!isJsonObject(decoded.value) || typeof decoded.value.type !== "string") return `message for actor ${actor} must be a JSON object with a string "type"`;
  const { type, payload, ...rest } = decoded.value;
  return { type, payload: isJsonObject(payload) ? payload : rest, ...(replyTo !== undefined && { replyTo }) };
}
