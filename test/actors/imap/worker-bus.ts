// What the IMAP worker tests do around a worker: send it a contract order for an account, ask it to
// deliver a draft, and read back the messages the account imported.
import type { NatsConnection } from "@nats-io/transport-node";
import type { Identity, Message } from "../../../actors/store/model.ts";
import type { Store } from "../../../actors/store/store.ts";
import { decodeJson, encodeJson } from "../../../runtime/json.ts";

/** Publishes `order` (sync, fullfetch, add_worker...) on `subject` for the account of `identity`. */
export function publishFor(client: NatsConnection, subject: string, order: string, identity: Identity): void {
  client.publish(subject, encodeJson({ order, remote_id: identity.identity_id, user_id: identity.user_id }));
}

/** The messages of the identity's user that the identity received (the first 500). */
export async function messagesOf(store: Store, identity: Identity): Promise<Message[]> {
  const page = await store.messages.list(identity.user_id, { limit: 500 });
  return page.items.filter((message) => message.user_identities.includes(identity.identity_id));
}

/** The reply of the account's worker to `deliver` on outboundIMAP for the draft `messageId`. */
export interface DeliverAnswer {
  error: boolean;
  message: string;
  sent_copy?: string;
}

/** Requests `deliver` of the draft on outboundIMAP, as the API does, and decodes the reply. */
export async function deliverThroughWorker(client: NatsConnection, identity: Identity, messageId: string, timeoutMs = 20_000): Promise<DeliverAnswer> {
  const order = { order: "deliver", message_id: messageId, remote_id: identity.identity_id, user_id: identity.user_id };
  const decoded = decodeJson((await client.request("outboundIMAP", encodeJson(order), { timeout: timeoutMs })).data);
  if (!decoded.ok) throw new Error(`the deliver reply is not JSON: ${decoded.error}`);
  return decoded.value as DeliverAnswer;
}
