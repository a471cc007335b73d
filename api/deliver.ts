// Sends a draft by asking the bridge that serves its identity (`deliver`, request/reply) and turns the
// answer into HTTP: an error reply is a 422 with its message, no reply in time a 504, nobody listening
// a 503.

import type { DeliverySubject } from "../actors/messages/delivery-route.ts";
import type { Message } from "../actors/store/model.ts";
import type { ApiContext } from "./api-context.ts";
import { HttpError } from "./http-error.ts";
import { NoResponders, RequestTimeout } from "./order-emitter.ts";

export async function deliver(context: ApiContext, subject: DeliverySubject, draft: Message, identityId: string): Promise<void> {
  let reply: Awaited<ReturnType<ApiContext["emitter"]["request"]>>;
  try {
    reply = await context.emitter.request(
      subject,
      "deliver",
      { message_id: draft.message_id, remote_id: identityId, user_id: draft.user_id },
      context.deliverTimeoutMs,
    );
  } catch (err) {
    if (err instanceof RequestTimeout) {
      throw new HttpError(504, `no answer from ${subject} within ${context.deliverTimeoutMs / 1000} s: the message may or may not have been sent`);
    }
    if (err instanceof NoResponders) throw new HttpError(503, `no service is listening on ${subject}: nothing was sent`);
    throw err;
  }
  if (reply.error) throw new HttpError(422, reply.message || `${subject} refused to send the message`);
}
