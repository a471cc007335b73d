// A bridge's `process_inbound` request may find the processing node's handlers all busy (its entry
// point answers "busy, try again"): that says nothing about the message, so it is asked again after
// short, growing pauses (possibly reaching another node of the queue group) instead of counting as a
// refusal of the import.

import { isJsonObject } from "../../runtime/json.ts";
import { BUSY } from "../../runtime/orders.ts";

const AGAIN = 5;
const PAUSE_MS = 200;

export function isBusy(reply: unknown): boolean {
  return isJsonObject(reply) && reply.error === true && reply.message === BUSY;
}

/** The request's reply, asked again up to five times (200 ms, 400 ms, … apart) while it is "busy". */
export async function requestWhileBusy<R>(request: () => Promise<R>): Promise<R> {
  let reply = await request();
  for (let attempt = 1; isBusy(reply) && attempt <= AGAIN; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, PAUSE_MS * attempt));
    reply = await request();
  }
  return reply;
}
