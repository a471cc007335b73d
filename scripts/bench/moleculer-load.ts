// Scenario 2's client for the Moleculer row, in its own process: a Moleculer broker (moleculer-broker.ts)
// that calls the responder's `outboundIMAP.deliver` action with broker.call, through the same rounds as
// load-generator.ts (request-rounds.ts) and with the same orders, decoded once into the params object
// Moleculer serialises into its own request packet (an envelope around them: id, meta, headers, sender…).
import { decodeJson, isJsonObject } from "../../runtime/json.ts";
import { DELIVER_ORDER, encodedOrders } from "./bench-payloads.ts";
import { childMain } from "./child-protocol.ts";
import { MOLECULER_ACTION, MOLECULER_SERVICE, startMoleculerBroker } from "./moleculer-broker.ts";
import { requestRounds } from "./request-rounds.ts";
import type { RequestLoadResult, RequestLoadTask } from "./results.ts";

const DISCOVERY_TIMEOUT_MS = 30_000;

function orderParams(keys: number): Record<string, unknown>[] {
  return encodedOrders(DELIVER_ORDER, keys).map((bytes) => {
    const decoded = decodeJson(bytes);
    if (!decoded.ok || !isJsonObject(decoded.value)) throw new Error("a bench order is not a JSON object");
    return decoded.value;
  });
}

childMain<RequestLoadTask>(async (task): Promise<RequestLoadResult> => {
  const { broker, stop } = await startMoleculerBroker(task.endpoint, "client");
  // Moleculer finds the responder's node by its discovery (INFO packets), before the first call.
  await broker.waitForServices(MOLECULER_SERVICE, DISCOVERY_TIMEOUT_MS);
  const params = orderParams(task.keys);
  const result = await requestRounds(task, {
    send: (index) => broker.call<unknown, Record<string, unknown>>(MOLECULER_ACTION, params[index % params.length] as Record<string, unknown>),
    isGood: (reply) => isJsonObject(reply) && reply.error === false,
  });
  await stop();
  return result;
});
