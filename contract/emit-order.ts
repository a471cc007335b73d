// How an actor emits one of the contract's orders: subject, order and fields typed by the table, so a
// misspelt subject, an order the subject does not have or a missing field does not compile.
import type { ActorPorts } from "../runtime/actor-family.ts";
import { validatePayload } from "../runtime/payload-schema.ts";
import { isReply } from "../runtime/reply.ts";
import { type ContractReply, type ContractSubject, type OrderFields, type OrderName, orderSpec, replyWithinMs } from "./contract-table.ts";

export function publishOrder<S extends ContractSubject, O extends OrderName<S>>(
  ports: Pick<ActorPorts, "publish">,
  subject: S,
  order: O,
  fields: OrderFields<S, O>,
): void {
  ports.publish(subject, { order, ...fields });
}

/**
 * Sends a request order and resolves to its reply, checked against the table; whatever else came back
 * (not a reply, a success without the fields it must carry) rejects with MalformedReply, as a request
 * that got no answer rejects. It waits as long as the contract says its requester does, or `timeoutMs`
 * when the caller must answer within less.
 */
export async function requestOrder<S extends ContractSubject, O extends OrderName<S>>(
  ports: Pick<ActorPorts, "request">,
  subject: S,
  order: O,
  fields: OrderFields<S, O>,
  timeoutMs: number = replyWithinMs(subject, order),
): Promise<ContractReply<S, O>> {
  return checkedReply(subject, order, await ports.request(subject, { order, ...fields }, timeoutMs));
}

/** What came back for a request order is not a reply the table allows. */
export class MalformedReply extends Error {
  override readonly name = "MalformedReply";
}

/** A reply from the bus, as the table says it must be; MalformedReply when it is not. */
export function checkedReply<S extends ContractSubject, O extends OrderName<S>>(subject: S, order: O, reply: unknown): ContractReply<S, O> {
  if (!isReply(reply)) throw new MalformedReply(`${subject} answered ${order} with something that is not a reply`);
  if (reply.error) return { ...reply, error: true };
  // The casts below name what the checks established: the reply schema of this very row.
  const fields = orderSpec(subject, order)?.reply;
  if (fields === undefined) return { ...reply, error: false } as ContractReply<S, O>;
  const valid = validatePayload(fields, reply);
  if (!valid.ok) throw new MalformedReply(`${subject} answered ${order} without what a success carries: ${valid.message}`);
  return { ...reply, ...valid.value, error: false } as ContractReply<S, O>;
}
