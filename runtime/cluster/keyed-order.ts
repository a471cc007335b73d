// Keyed orders (add_worker, sync, …) for one actor: start, reload or remove it, or tell it a message.
// A node hands each to the actor's owner (keyed-orders.ts), which answers once the actor's state after
// it is saved. Anyone able to publish on a node's inbox could send anything, so each is checked here.
import { BUS_JSON_LIMITS, isJsonObject, type JsonLimits } from "../json.ts";
import { actorKeyProblem } from "../subjects.ts";

/** start, reload or remove an actor, or tell it a message. */
export type KeyedOperation = "start" | "reload" | "remove" | "tell";

export interface KeyedOrder {
  /** Unique per order: the actor drops one handed to it again (the owner's answer lost, the order redelivered). */
  id: string;
  op: KeyedOperation;
  kind: string;
  key: string;
  /** For start/reload, and tell to an actor that starts on its first message: the actor's input. */
  input?: Record<string, unknown>;
  /** For tell: the message for the actor. */
  message?: { type: string; payload: Record<string, unknown> };
}

/**
 * Keyed orders wrap an order that passed the bus limits (the message's payload sits two levels down),
 * with a little more room for the wrapper. The same for messages forwarded to a node's inbox.
 */
export const WRAPPED_ORDER_LIMITS: JsonLimits = { maxBytes: BUS_JSON_LIMITS.maxBytes + 8 * 1024, maxDepth: BUS_JSON_LIMITS.maxDepth + 2 };

const OPERATIONS: readonly string[] = ["start", "reload", "remove", "tell"] satisfies KeyedOperation[];
/** What nodes of earlier versions named `tell`, still in a stream when a cluster is upgraded. */
const EARLIER_NAMES: Readonly<Record<string, KeyedOperation>> = { deliver: "tell" };
/** Order ids are UUIDs or `intake-<sequence>`; an actor keeps the latest ones in its snapshot. */
const MAX_ORDER_ID_LENGTH = 128;
/** An actor's input is a few ids (e.g. remote_id, user_id): they end up in store keys, so they are bounded too. */
const MAX_INPUT_FIELDS = 16;
const MAX_INPUT_STRING_LENGTH = 128;
/** Kinds are short names (`imap`, `poller`). */
export const MAX_KIND_LENGTH = 64;

/**
 * A keyed order as it came over the bus, checked (anyone able to publish on a node's inbox could put
 * anything there), or why it is unusable. The message itself is checked by the actor it is for.
 */
export function readKeyedOrder(value: unknown): KeyedOrder | string {
  if (!isJsonObject(value)) return "a keyed order must be a JSON object";
  const { id, op, kind, key, input, message } = value;
  if (typeof id !== "string" || id === "" || id.length > MAX_ORDER_ID_LENGTH) return `a keyed order needs an "id" of 1-${MAX_ORDER_ID_LENGTH} characters`;
  const operation = typeof op === "string" && Object.hasOwn(EARLIER_NAMES, op) ? EARLIER_NAMES[op] : op;
  if (typeof operation !== "string" || !OPERATIONS.includes(operation)) return `unknown keyed operation ${JSON.stringify(String(op).slice(0, 32))}`;
  if (typeof kind !== "string" || kind === "" || kind.length > MAX_KIND_LENGTH) return `a keyed order needs a "kind" of 1-${MAX_KIND_LENGTH} characters`;
  const badKey = actorKeyProblem(key);
  if (badKey !== null) return badKey;
  if (input !== undefined && !isFlatInput(input)) {
    return `a keyed order's "input" must be an object of at most ${MAX_INPUT_FIELDS} strings (at most ${MAX_INPUT_STRING_LENGTH} characters), numbers or booleans`;
  }
  if (message !== undefined && (!isJsonObject(message) || typeof message.type !== "string" || !isJsonObject(message.payload))) {
    return `a keyed order's "message" must be {type: string, payload: object}`;
  }
  return {
    id,
    op: operation as KeyedOperation,
    kind,
    key: key as string,
    ...(input !== undefined && { input: input as Record<string, unknown> }),
    ...(message !== undefined && { message: { type: message.type as string, payload: message.payload as Record<string, unknown> } }),
  };
}

function isFlatInput(input: unknown): boolean {
  if (!isJsonObject(input)) return false;
  const values = Object.values(input);
  return (
    values.length <= MAX_INPUT_FIELDS &&
    values.every((value) => typeof value === "number" || typeof value === "boolean" || (typeof value === "string" && value.length <= MAX_INPUT_STRING_LENGTH))
  );
}
