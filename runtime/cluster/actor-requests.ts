// Requests from this node's own services to a keyed actor, wherever it runs, for messages that are not
// contract orders (so no entry point takes them): the message is forwarded to the actor's owner with a
// reply subject on this node's inbox, and the actor answers there. The message is still checked by the
// actor's family on arrival, as any bus message (its `accepts`).
import { decodeBusJson } from "../json.ts";
import { failure, type Reply } from "../reply.ts";
import type { Requester } from "../requester.ts";
import type { Admission } from "./actor-router.ts";
import type { ForwardedMessage, KeyedOrders } from "./keyed-orders.ts";

export interface ActorRequest<P extends ForwardedMessage["message"]["payload"] = ForwardedMessage["message"]["payload"]> {
  kind: string;
  key: string;
  message: { type: string; payload: P };
  /** Starts the actor with this input when it does not run yet (families that start on their first message). */
  input?: Record<string, unknown>;
  /** Checked before anything is forwarded (e.g. the key names something that exists). */
  admit?: Admission<P>;
}

/** The actor's reply (any JSON), or the failure reply of a message that could not reach it. */
export async function requestActor<P extends ForwardedMessage["message"]["payload"]>(
  keyed: KeyedOrders,
  requester: Requester,
  request: ActorRequest<P>,
  timeoutMs: number,
): Promise<unknown> {
  if (request.admit !== undefined) {
    const refusal = await request.admit(request.message.payload, { subject: `${request.kind} actor`, order: request.message.type, mode: "request" });
    if (refusal !== null) return failure(refusal);
  }
  const label = `${request.kind}/${request.key} (${request.message.type})`;
  const waiting = requester.expect(label, timeoutMs);
  let refused: Reply | undefined;
  try {
    refused = await keyed.forward({
      kind: request.kind,
      key: request.key,
      message: request.message,
      replyTo: waiting.replyTo,
      ...(request.input !== undefined && { input: request.input }),
    });
  } catch (err) {
    waiting.cancel();
    throw err;
  }
  if (refused !== undefined) {
    waiting.cancel();
    return refused;
  }
  const reply = await waiting.reply;
  const decoded = decodeBusJson(reply.data);
  if (!decoded.ok) throw new Error(`reply from ${label} is not JSON: ${decoded.error}`);
  return decoded.value;
}
