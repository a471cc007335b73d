// Messages and drafts: list and read them, write drafts and send one (SendDraft), mark a message read or
// flagged, tag it, delete it (a synced message's server follows, through its account's imap worker).
import type { FastifyInstance } from "fastify";
import { type DraftPrivacy, draftPrivacy } from "../../actors/mail/draft-privacy.ts";
import { attachmentIds } from "../../actors/mail/mail-attachment.ts";
import { deliverySubject, messageProtocol } from "../../actors/messages/delivery-route.ts";
import { discussionId } from "../../actors/messages/discussion.ts";
import { type DraftFields, draftParticipants, newDraft } from "../../actors/messages/new-draft.ts";
import type { Identity, Message } from "../../actors/store/model.ts";
import { type ApiContext, userOf } from "../api-context.ts";
import { deliver } from "../deliver.ts";
import { badRequest, HttpError, notFound } from "../http-error.ts";
import { page, pageQuery } from "../schemas/common.ts";
import { createDraftBody, messageActionsBody, messageParams, patchMessageBody } from "../schemas/messages.ts";
import { pageOrBadCursor } from "./page-cursor.ts";

const tags = ["messages"];

/** A PatchMessage body: a draft's fields, and any message's read, flagged and tags. */
type MessagePatch = DraftFields & { is_unread?: boolean; is_flagged?: boolean; tags?: string[] };

/** The flag fields a patch sets; `is_flagged` brings the tag `flagged` along (the tag IMAP's \Flagged is imported as). */
function withFlags(message: Message, patch: MessagePatch): Partial<Message> {
  let messageTags = patch.tags ?? message.tags;
  if (patch.is_flagged !== undefined) {
    const others = messageTags.filter((tag) => tag.toLowerCase() !== "flagged");
    messageTags = patch.is_flagged ? [...others, "flagged"] : others;
  }
  return {
    ...(patch.is_unread !== undefined && { is_unread: patch.is_unread }),
    ...(patch.is_flagged !== undefined && { is_flagged: patch.is_flagged }),
    ...((patch.tags !== undefined || patch.is_flagged !== undefined) && { tags: messageTags }),
  };
}
/** Only mail is encrypted: a draft sent from another identity cannot require it. */
function requireMail(identity: Identity): void {
  if (messageProtocol(identity) !== "email") throw badRequest("require_encryption", `only mail can be encrypted, not ${identity.protocol} messages`);
}

const listQuery = { ...pageQuery, properties: { ...pageQuery.properties, is_draft: { type: "boolean" } } } as const;

/** The user's message, or 404: another user's is not found either. */
export async function usersMessage({ store }: ApiContext, userId: string, messageId: string): Promise<Message> {
  const message = await store.messages.get(userId, messageId);
  if (message === null) throw notFound(`message ${messageId}`);
  return message;
}

export function messageRoutes(app: FastifyInstance, context: ApiContext): void {
  const { store } = context;

  const sendingIdentity = async (userId: string, identityId: string, field: string): Promise<Identity> => {
    const identity = await store.identities.get(userId, identityId);
    if (identity === null || identity.status === "deleted") throw badRequest(field, `no identity ${identityId} to send from`);
    return identity;
  };
  const messageOf = (userId: string, messageId: string) => usersMessage(context, userId, messageId);
  /** A draft read alone says what sending it will do (encrypted, signed, clear, and why). */
  const withPrivacy = async (message: Message): Promise<Message & { privacy?: DraftPrivacy }> => {
    if (!message.is_draft) return message;
    const identity = await store.identities.get(message.user_id, message.user_identities[0] ?? "");
    return { ...message, privacy: await draftPrivacy(store, message, identity) };
  };

  app.get<{ Querystring: { offset: number; limit: number; is_draft?: boolean; after?: string } }>(
    "/api/v2/messages",
    {
      schema: {
        operationId: "ListMessages",
        tags,
        summary: "Messages and drafts, newest first, paged (is_draft filters)",
        querystring: listQuery,
        response: { 200: page("Message") },
      },
    },
    async (request) => {
      const listed = await pageOrBadCursor(() => store.messages.list(userOf(request).user_id, request.query));
      return { ...listed, items: listed.items.map(attachmentIds) };
    },
  );

  app.get<{ Params: { message_id: string } }>(
    "/api/v2/messages/:message_id",
    { schema: { operationId: "GetMessage", tags, summary: "One message or draft", params: messageParams, response: { 200: { $ref: "Message#" } } } },
    async (request) => withPrivacy(attachmentIds(await messageOf(userOf(request).user_id, request.params.message_id))),
  );

  app.post<{ Body: DraftFields & { identity_id: string } }>(
    "/api/v2/messages",
    {
      schema: {
        operationId: "CreateDraft",
        tags,
        summary: "Write a draft, sent from one of the user's identities",
        body: createDraftBody,
        response: { 201: { $ref: "Message#" } },
      },
    },
    async (request, reply) => {
      const user = userOf(request);
      const identity = await sendingIdentity(user.user_id, request.body.identity_id, "identity_id");
      const parentId = request.body.parent_id;
      if (typeof parentId === "string" && (await store.messages.get(user.user_id, parentId)) === null) {
        throw badRequest("parent_id", `no message ${parentId} to reply to`);
      }
      if (request.body.require_encryption === true) requireMail(identity);
      const draft = await store.messages.create(newDraft(identity, request.body));
      return reply.code(201).send(await withPrivacy(draft));
    },
  );

  app.patch<{ Params: { message_id: string }; Body: MessagePatch }>(
    "/api/v2/messages/:message_id",
    {
      schema: {
        operationId: "PatchMessage",
        tags,
        summary: "Change a draft, or whether a message is read or flagged and its tags (carried to the server of a synced message)",
        params: messageParams,
        body: patchMessageBody,
        response: { 200: { $ref: "Message#" } },
      },
    },
    async (request) => {
      const user = userOf(request);
      const current = await messageOf(user.user_id, request.params.message_id);
      const body = request.body;
      const draftChange =
        body.subject !== undefined ||
        body.body_plain !== undefined ||
        body.body_html !== undefined ||
        body.participants !== undefined ||
        body.require_encryption !== undefined;
      if (draftChange && !current.is_draft) throw new HttpError(409, "only a draft's subject, bodies, participants and require_encryption can be changed");
      const identity = draftChange ? await sendingIdentity(user.user_id, current.user_identities[0] ?? "", "identity_id") : null;
      if (body.require_encryption === true && identity !== null) requireMail(identity);
      const updated = await store.messages.update(user.user_id, current.message_id, (message) => {
        if (draftChange && !message.is_draft) throw new HttpError(409, "the draft was sent meanwhile");
        const participants = identity === null || body.participants === undefined ? message.participants : draftParticipants(identity, body.participants);
        return {
          ...message,
          ...(body.subject !== undefined && { subject: body.subject }),
          ...(body.body_plain !== undefined && { body_plain: body.body_plain }),
          ...(body.body_html !== undefined && { body_html: body.body_html }),
          ...(body.require_encryption !== undefined && { require_encryption: body.require_encryption }),
          ...withFlags(message, body),
          ...(draftChange && { participants, discussion_id: discussionId(participants), date: new Date().toISOString() }),
        };
      });
      if (updated === null) throw notFound(`message ${current.message_id}`);
      // The copies on the user's servers follow (the account's imap worker carries it).
      if (body.is_unread !== undefined || body.is_flagged !== undefined || body.tags !== undefined) {
        for (const identityId of await syncedIdentities(user.user_id, updated)) {
          await context.emitter.publish("IMAPfetcher", "store_flags", { remote_id: identityId, user_id: user.user_id, message_id: updated.message_id });
        }
      }
      return withPrivacy(updated);
    },
  );

  app.delete<{ Params: { message_id: string } }>(
    "/api/v2/messages/:message_id",
    {
      schema: {
        operationId: "DeleteMessage",
        tags,
        summary:
          "Delete a message: a synced one is moved to its account's Trash by the account's imap worker, then deleted here (202); any other is deleted at once (204)",
        params: messageParams,
        response: { 202: { type: "object", properties: { message: { type: "string" }, identities: { type: "array", items: { type: "string" } } } } },
      },
    },
    async (request, reply) => {
      const user = userOf(request);
      const message = await messageOf(user.user_id, request.params.message_id);
      const identities = await syncedIdentities(user.user_id, message);
      if (identities.length === 0) {
        await store.messages.delete(user.user_id, message.message_id);
        // Files uploaded to it were its own.
        for (const attachment of message.attachments) if (attachment.content_raw_id !== undefined) await store.raws.remove(attachment.content_raw_id);
        return reply.code(204).send();
      }
      for (const identityId of identities) {
        await context.emitter.publish("IMAPfetcher", "move_to_trash", { remote_id: identityId, user_id: user.user_id, message_id: message.message_id });
      }
      return reply.code(202).send({ message: "moving to Trash on the account's server, then deleted here", identities });
    },
  );

  /** The user's active IMAP identities holding a copy of the message. */
  const syncedIdentities = async (userId: string, message: Message): Promise<string[]> => {
    const ids = [...new Set((message.locations ?? []).map((location) => location.identity_id))];
    const found = await Promise.all(ids.map((id) => store.identities.get(userId, id)));
    return found
      .filter(
        (identity): identity is Identity =>
          identity !== null && identity.status === "active" && (identity.protocol === "imap" || identity.protocol === "email"),
      )
      .map((identity) => identity.identity_id);
  };

  app.post<{ Params: { message_id: string }; Body: { actions: ["send"] } }>(
    "/api/v2/messages/:message_id/actions",
    {
      schema: {
        operationId: "SendDraft",
        tags,
        summary: "Send a draft: deliver request on outboundSMTP (local identity), outboundIMAP (remote mail account) or twitter_dm, by its identity",
        params: messageParams,
        body: messageActionsBody,
        response: { 200: { $ref: "Message#" } },
      },
    },
    async (request) => {
      const user = userOf(request);
      const draft = await messageOf(user.user_id, request.params.message_id);
      if (!draft.is_draft) throw new HttpError(422, "this message is not a draft: it was sent already");
      if (!draft.participants.some((p) => p.type === "To" || p.type === "Cc" || p.type === "Bcc")) throw new HttpError(422, "the draft has no recipient");
      const identityId = draft.user_identities[0] ?? "";
      const identity = await store.identities.get(user.user_id, identityId);
      if (identity === null || identity.status === "deleted") throw new HttpError(422, `the draft's identity ${identityId} no longer exists`);
      const subject = deliverySubject(identity);
      if (subject === null) throw new HttpError(422, `no service sends messages for ${identity.protocol} identities`);
      await deliver(context, subject, draft, identity.identity_id);
      return messageOf(user.user_id, draft.message_id);
    },
  );
}
