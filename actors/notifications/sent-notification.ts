// The `message_sent` notification of a draft this node's bridge sent (SMTP, through the relay or an
// account's own server; a Twitter DM): wrapped around the bridge's `deliver`, it looks at the draft
// before the send and at the message after. Only a draft that was one before and is a sent message after
// a successful reply is notified, so a retried `deliver` answered "already sent" says nothing again; two
// deliveries racing over one draft carry the same JetStream message id, which the stream keeps once.
// It never changes the reply nor delays it: the look after the send and the publish happen behind it.

import type { Logger } from "pino";
import type { Reply } from "../../runtime/reply.ts";
import type { Store } from "../store/store.ts";
import type { NotificationSink } from "./notification-publisher.ts";
import { notificationElement } from "./notification-summary.ts";

/** What a `deliver` names: the draft of `user_id`, sent from the identity `remote_id`. */
export interface SentDraftOrder {
  message_id: string;
  remote_id: string;
  user_id: string;
}

/** Runs `send` (a deliver) and notifies the user when it sent the draft; `replyOf` finds the deliver's reply in what `send` gives. */
export async function notifyingSend<R>(
  deps: { store: Store; sink: NotificationSink; logger: Logger },
  order: SentDraftOrder,
  send: () => Promise<R>,
  replyOf: (result: R) => Reply | undefined,
): Promise<R> {
  const wasDraft = await deps.store.messages.get(order.user_id, order.message_id).then(
    (message) => message?.is_draft === true,
    // Not knowing is not a reason to fail the send: the draft is then taken for not sent before.
    () => true,
  );
  const result = await send();
  const reply = replyOf(result);
  if (wasDraft && reply !== undefined && !reply.error) void notifySent(deps, order);
  return result;
}

async function notifySent(deps: { store: Store; sink: NotificationSink; logger: Logger }, order: SentDraftOrder): Promise<void> {
  try {
    const message = await deps.store.messages.get(order.user_id, order.message_id);
    if (message === null || message.is_draft) return;
    deps.sink.publish(
      {
        type: "message_sent",
        user_id: order.user_id,
        size: 1,
        emitted_at: new Date().toISOString(),
        elements: [notificationElement(message, order.remote_id)],
      },
      `sent.${order.user_id}.${order.message_id}`,
    );
  } catch (err) {
    deps.logger.warn({ message_id: order.message_id, err: (err as Error).message }, "sent, but its notification could not be made");
  }
}
