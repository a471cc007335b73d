// The raw message of a direct message (docs/decisions.md §5: "the event JSON for a DM"), in one place for both
// sides: the Twitter worker writes it (a fetched event, or the event of a DM it sent), InboundTwitter
// reads it. It is the X API v2 DM event as the API returned it, plus what the event alone does not say:
// the screen names of its sender and recipient, and whether the account sent or received it.
//
//   {
//     "format": "x-dm-event/1",
//     "event": { "id": "1790000000000000001", "event_type": "MessageCreate", "text": "hello",
//                "created_at": "2024-05-01T10:00:00.000Z", "sender_id": "12", "dm_conversation_id": "12-34",
//                "participant_ids": [...], "attachments": { "media_keys": [...] } },
//     "sender":    { "id": "12", "username": "alice", "name": "Alice" },
//     "recipient": { "id": "34", "username": "bob", "name": "Bob" },
//     "direction": "received"            // or "sent": the account's own message
//   }
//
// Ids are decimal strings (they exceed 2^53): compare them with `compareIds`, never as numbers or strings.

export const DM_RAW_FORMAT = "x-dm-event/1";

export interface XUser {
  id: string;
  username: string;
  name: string;
}

/** A DM event as X API v2 `GET /2/dm_events` returns it (the fields this bridge asks for). */
export interface XDmEvent {
  id: string;
  event_type?: string;
  text?: string;
  created_at?: string;
  sender_id?: string;
  dm_conversation_id?: string;
  participant_ids?: string[];
  attachments?: { media_keys?: string[]; card_ids?: string[] };
  [field: string]: unknown;
}

export type DmDirection = "received" | "sent";

export interface StoredDm {
  format: typeof DM_RAW_FORMAT;
  event: XDmEvent;
  sender: XUser;
  recipient: XUser;
  direction: DmDirection;
}

export function encodeStoredDm(dm: Omit<StoredDm, "format">): Uint8Array {
  const stored: StoredDm = { format: DM_RAW_FORMAT, event: dm.event, sender: dm.sender, recipient: dm.recipient, direction: dm.direction };
  return Buffer.from(JSON.stringify(stored), "utf8");
}

/** Reads a stored DM; throws an Error saying what is wrong when the bytes are not one. */
export function decodeStoredDm(bytes: Uint8Array): StoredDm {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch (err) {
    throw new Error(`not JSON: ${(err as Error).message}`);
  }
  if (!isObject(value)) throw new Error("not a JSON object");
  if (value.format !== DM_RAW_FORMAT) throw new Error(`unknown format ${JSON.stringify(value.format)} (expected "${DM_RAW_FORMAT}")`);
  const event = value.event;
  if (!isObject(event) || !isId(event.id)) throw new Error("event.id missing or not a decimal id");
  if (event.text !== undefined && typeof event.text !== "string") throw new Error("event.text is not a string");
  const sender = userOf(value.sender, "sender");
  const recipient = userOf(value.recipient, "recipient");
  const direction = value.direction === "sent" ? "sent" : value.direction === "received" ? "received" : null;
  if (direction === null) throw new Error(`direction must be "sent" or "received"`);
  return { format: DM_RAW_FORMAT, event: event as XDmEvent, sender, recipient, direction };
}

/** The key under which a DM is de-duplicated per user (kept apart from e-mail Message-IDs). */
export function dmExternalKey(eventId: string): string {
  return `x-dm:${eventId}`;
}

export function isId(value: unknown): value is string {
  return typeof value === "string" && /^\d{1,30}$/.test(value);
}

/** Orders two decimal ids as the big integers they are. */
export function compareIds(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** A screen name as an address: without a leading "@", lower-cased. */
export function screenNameAddress(username: string): string {
  return username.trim().replace(/^@/, "").toLowerCase();
}

function userOf(value: unknown, what: string): XUser {
  if (!isObject(value) || !isId(value.id) || typeof value.username !== "string" || value.username.trim() === "") {
    throw new Error(`${what} must be {id, username, name}`);
  }
  return { id: value.id, username: value.username, name: typeof value.name === "string" ? value.name : "" };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
