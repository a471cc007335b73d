// The wire contract of ../shared/contract/caliopen-messaging-system.md as one table, with the names
// fixed by docs/decisions.md §1 (no trailing spaces in subjects, `poll_intervall` spelled as on the wire).
// Subscriptions, validation, the CLI and the tests are all derived from this table.

import type { OrderMode } from "../runtime/orders.ts";
import type { FieldSpec, PayloadOf, PayloadSchema } from "../runtime/payload-schema.ts";
import type { Reply } from "../runtime/reply.ts";
import { ACTOR_KINDS, type ActorKind } from "./actor-kinds.ts";

/**
 * Every id of the contract (user_id, remote_id, identity_id, message_id, contact_id, key_id,
 * resource_id): Caliopen's ids are UUIDs (key ids are hex); 1-64 letters, digits, '_' or '-' also
 * allows short test ids. Checked at the entry point, before any store key or subject is made from it:
 * no '.', '*', '>', spaces, control or non-ASCII characters.
 */
export const ID_MAX_LENGTH = 64;
export const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
export const ID_RULE = "1-64 characters of A-Z a-z 0-9 _ -";

const id = (description: string) =>
  ({ type: "string", required: true, description, maxLength: ID_MAX_LENGTH, pattern: ID_PATTERN, patternDescription: ID_RULE }) as const satisfies FieldSpec;

/** The protocols `update_interval` may name (the bridges that slow down). */
export const INTERVAL_PROTOCOLS = ["imap", "email", "twitter"] as const;

const userId = id("the user the order is for");
const remoteId = id("a remote identity id (same id space as identity_id)");
const identityId = id("a remote identity id");
const messageId = id("the message (draft, or raw message for inbound processing)");
const contactId = id("a contact of the user");

/**
 * Who handles an order on the nodes: the actor of `actor` keyed by the payload field `key` (one node of
 * the cluster runs it), told the order as a `message` or, for `lifecycle` orders, started, reloaded or
 * removed by its supervisor; or a `stateless` handler, which any node runs.
 */
export type OrderRouting = { actor: ActorKind; key: string; as: "message" | "lifecycle" } | { stateless: string };

export interface OrderSpec {
  mode: OrderMode;
  payload: PayloadSchema;
  handledBy: OrderRouting;
  /** For a request: how long its requester waits for the reply (docs/decisions.md §3). */
  replyWithinMs?: number;
  /**
   * For a request: the fields a successful reply carries besides `error` and `message` (every reply,
   * success or not, is `{"error": bool, "message": string, …}`).
   */
  reply?: PayloadSchema;
  /** Who emits it, for the generated documentation. */
  emittedBy: string;
  /** An order the seed contract does not have: what this build adds it for. */
  extension?: string;
}

export interface SubjectSpec {
  subject: string;
  queue: string;
  /** The service that consumes the subject. */
  service: string;
  /** The seed's function or class that handled it. */
  handler: string;
  orders: Readonly<Record<string, OrderSpec>>;
}

const actor = (kind: ActorKind, key: string) => ({ actor: kind, key, as: "message" }) as const;

const deliver = {
  mode: "request",
  replyWithinMs: 30_000,
  payload: { message_id: messageId, remote_id: remoteId, user_id: userId },
  reply: { message_id: id("the draft, sent") },
} as const;

const workerLifecycle = (emittedBy: string, kind: ActorKind) => {
  const payload = { remote_id: remoteId, user_id: userId };
  const handledBy = { actor: kind, key: "remote_id", as: "lifecycle" } as const;
  return {
    add_worker: { mode: "publish", emittedBy, payload, handledBy },
    reload_worker: { mode: "publish", emittedBy, payload, handledBy },
    remove_worker: { mode: "publish", emittedBy, payload, handledBy },
  } as const satisfies Record<string, OrderSpec>;
};

const processInbound = (emittedBy: string) =>
  ({
    process_inbound: {
      mode: "request",
      replyWithinMs: 10_000,
      emittedBy,
      payload: { message_id: messageId, remote_id: remoteId, user_id: userId },
      reply: {
        message_id: id("the message the raw became (or had already become)"),
        discussion_id: { type: "string", required: true, description: "its discussion", maxLength: 128 },
      },
      handledBy: actor(ACTOR_KINDS.inbound, "user_id"),
    },
  }) as const satisfies Record<string, OrderSpec>;

const identityOrder = { identity_id: identityId, user_id: userId };
const toPoller = actor(ACTOR_KINDS.poller, "identity_id");
const toImapWorker = actor(ACTOR_KINDS.imap, "remote_id");
const toTwitterWorker = actor(ACTOR_KINDS.twitter, "remote_id");

export const CONTRACT = [
  {
    subject: "identitiesWorker",
    queue: "IDsworker",
    service: "identities-worker",
    handler: "natsOrdersHandler",
    orders: {
      add_identity: { mode: "publish", emittedBy: "apiv2 CreateUserIdentity", payload: identityOrder, handledBy: toPoller },
      update_identity: { mode: "publish", emittedBy: "apiv2 PatchUserIdentity", payload: identityOrder, handledBy: toPoller },
      delete_identity: {
        mode: "publish",
        emittedBy: "apiv2 DeleteUserIdentity, imap-bridge after 72 h of failures",
        payload: identityOrder,
        handledBy: toPoller,
      },
      update_interval: {
        mode: "publish",
        emittedBy: "imap-bridge, twitter-bridge",
        handledBy: toPoller,
        payload: {
          ...identityOrder,
          poll_intervall: { type: "decimal", required: true, description: "minutes, as a decimal string", maxLength: 16 },
          protocol: { type: "string", required: true, description: "imap, email or twitter", enum: INTERVAL_PROTOCOLS },
        },
      },
    },
  },
  {
    subject: "imap_worker",
    queue: "IMAPworkers",
    service: "imap-bridge",
    handler: "WorkerMsgHandler",
    orders: workerLifecycle("identities-worker, operator CLI", ACTOR_KINDS.imap),
  },
  {
    subject: "IMAPfetcher",
    queue: "IMAPworkers",
    service: "imap-bridge",
    handler: "natsMsgHandler",
    orders: {
      sync: { mode: "publish", emittedBy: "identities-worker imapJob", payload: { remote_id: remoteId, user_id: userId }, handledBy: toImapWorker },
      fullfetch: { mode: "publish", emittedBy: "operator CLI", payload: { remote_id: remoteId, user_id: userId }, handledBy: toImapWorker },
      store_flags: {
        mode: "publish",
        emittedBy: "apiv2 PatchMessage",
        extension: "carries what the user changed here (read, flagged, tags) to the copies of the message on the account's server",
        payload: { remote_id: remoteId, user_id: userId, message_id: id("a message synced from the account") },
        handledBy: toImapWorker,
      },
      move_to_trash: {
        mode: "publish",
        emittedBy: "apiv2 DeleteMessage",
        extension: "moves the copies of a message deleted here to the account's Trash, then deletes the message",
        payload: { remote_id: remoteId, user_id: userId, message_id: id("a message synced from the account") },
        handledBy: toImapWorker,
      },
    },
  },
  {
    subject: "outboundIMAP",
    queue: "IMAPworkers",
    service: "imap-bridge",
    handler: "natsMsgHandler",
    orders: { deliver: { ...deliver, emittedBy: "apiv2 SendDraft (remote email identity)", handledBy: toImapWorker } },
  },
  {
    subject: "twitter_worker",
    queue: "twitterworkers",
    service: "twitter-bridge",
    handler: "WorkerMsgHandler",
    orders: workerLifecycle("identities-worker, operator CLI", ACTOR_KINDS.twitter),
  },
  {
    subject: "twitter_dm",
    queue: "twitterworkers",
    service: "twitter-bridge",
    handler: "DMmsgHandler",
    orders: {
      sync: { mode: "publish", emittedBy: "identities-worker twitterJob", payload: { remote_id: remoteId, user_id: userId }, handledBy: toTwitterWorker },
      deliver: { ...deliver, emittedBy: "apiv2 SendDraft (twitter identity)", handledBy: toTwitterWorker },
    },
  },
  {
    subject: "outboundSMTP",
    queue: "SMTPqueue",
    service: "smtp-bridge",
    handler: "natsMsgHandler",
    orders: {
      deliver: {
        ...deliver,
        emittedBy: "apiv2 SendDraft (local identity), SendEmailAdminToUser, imap-bridge",
        handledBy: { stateless: "deliverDraft (actors/mail/outbound-smtp.ts)" },
      },
    },
  },
  {
    subject: "inboundSMTP",
    queue: "SMTPqueue",
    service: "mq-worker",
    handler: "InboundEmail",
    orders: processInbound("smtp-bridge, imap-bridge"),
  },
  {
    subject: "inboundTwitter",
    queue: "Twitterqueue",
    service: "mq-worker",
    handler: "InboundTwitter",
    orders: processInbound("twitter-bridge"),
  },
  {
    subject: "contactAction",
    queue: "contactQueue",
    service: "mq-worker",
    handler: "ContactAction",
    orders: {
      contact_update: {
        mode: "publish",
        emittedBy: "apiv2 CreateContact / UpdateContact",
        payload: { contact_id: contactId, user_id: userId },
        handledBy: actor(ACTOR_KINDS.contact, "contact_id"),
      },
    },
  },
  {
    subject: "keyAction",
    queue: "keyQueue",
    service: "mq-worker",
    handler: "KeyAction",
    orders: {
      discover_key: {
        mode: "publish",
        emittedBy: "apiv2 launchKeyDiscovery / UpdateContact",
        payload: { contact_id: contactId, user_id: userId },
        handledBy: actor(ACTOR_KINDS.contact, "contact_id"),
      },
      publish_key: {
        mode: "publish",
        emittedBy: "apiv2 CreatePGPPubKey",
        handledBy: actor(ACTOR_KINDS.contact, "resource_id"),
        payload: { key_id: id("the public key"), resource_id: id("the contact that owns the key"), user_id: userId },
      },
      delete_key: {
        mode: "publish",
        emittedBy: "apiv2 DeletePubKey",
        handledBy: actor(ACTOR_KINDS.contact, "resource_id"),
        payload: { key_id: id("the public key"), resource_id: id("the contact that owns the key"), user_id: userId },
      },
    },
  },
] as const satisfies readonly SubjectSpec[];

export type ContractSubject = (typeof CONTRACT)[number]["subject"];

export function subjectSpec(subject: string): SubjectSpec | undefined {
  return CONTRACT.find((spec) => spec.subject === subject);
}

/** The order's spec, or undefined when the subject or the order is not in the contract. */
export function orderSpec(subject: string, order: string): OrderSpec | undefined {
  const spec = subjectSpec(subject);
  return spec !== undefined && Object.hasOwn(spec.orders, order) ? (spec.orders as Record<string, OrderSpec>)[order] : undefined;
}

type SubjectRow<S extends ContractSubject> = Extract<(typeof CONTRACT)[number], { subject: S }>;
export type OrderName<S extends ContractSubject> = keyof SubjectRow<S>["orders"] & string;

/**
 * An order's payload fields without `order`, derived from the table: what an emitter fills in, what a
 * handler reads. `OrderFields<"IMAPfetcher", "sync">` is `{ remote_id: string; user_id: string }` (and any
 * extra field, which the contract accepts).
 */
export type OrderFields<S extends ContractSubject, O extends OrderName<S>> = PayloadOf<
  SubjectRow<S>["orders"][O] extends { payload: infer P extends PayloadSchema } ? P : never
>;

/** What a successful reply to a request order carries, besides `error` and `message`. */
export type ReplyFields<S extends ContractSubject, O extends OrderName<S>> = PayloadOf<
  SubjectRow<S>["orders"][O] extends { reply: infer P extends PayloadSchema } ? P : Record<string, never>
>;

/** The reply to a request order, checked: a failure, or a success with the fields the table names. */
export type ContractReply<S extends ContractSubject, O extends OrderName<S>> = (Reply & { error: true }) | (Reply & { error: false } & ReplyFields<S, O>);

/** The validated payload of an order, as its handler gets it: `OrderPayload<"IMAPfetcher", "sync">`. */
export type OrderPayload<S extends ContractSubject, O extends OrderName<S>> = OrderFields<S, O> & { order: O };

/** The actor an order goes to: its kind and the payload field holding its key (throws for an order no actor handles). */
export function actorOf<S extends ContractSubject>(subject: S, order: OrderName<S>): { kind: ActorKind; keyField: string } {
  const routing = orderSpec(subject, order)?.handledBy;
  if (routing === undefined || !("actor" in routing)) throw new Error(`"${order}" on ${subject} is not handled by an actor`);
  return { kind: routing.actor, keyField: routing.key };
}

/** How long the requester of a request order waits for its reply, as the contract says. */
export function replyWithinMs<S extends ContractSubject>(subject: S, order: OrderName<S>): number {
  const wait = orderSpec(subject, order)?.replyWithinMs;
  if (wait === undefined) throw new Error(`"${order}" on ${subject} is not a request of the contract`);
  return wait;
}

/** A subject whose orders are all published (no replies expected): it can be captured durably. */
export function isPublishOnly(spec: SubjectSpec): boolean {
  return Object.values(spec.orders).every((order) => order.mode === "publish");
}

/**
 * What an actor family that handles these orders accepts from outside (ActorFamily.accepts): each
 * order's payload schema, as in this table. `{ IMAPfetcher: ["sync"], outboundIMAP: ["deliver"] }`.
 */
export function handledOrders(handled: { [S in ContractSubject]?: readonly OrderName<S>[] }): Readonly<Record<string, PayloadSchema>> {
  const accepts: Record<string, PayloadSchema> = {};
  for (const [subject, orders] of Object.entries(handled) as [ContractSubject, readonly string[]][]) {
    for (const order of orders) {
      const spec = orderSpec(subject, order);
      if (spec === undefined) throw new Error(`the contract has no "${order}" order on ${subject}`);
      const known = accepts[order];
      if (known !== undefined && known !== spec.payload) throw new Error(`"${order}" has different payloads on different subjects; an actor cannot take both`);
      accepts[order] = spec.payload;
    }
  }
  return accepts;
}
