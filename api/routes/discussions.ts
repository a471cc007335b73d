// Discussions: the user's, newest activity first, each with its last message, its participants and its
// counts; and one discussion's messages, newest first. Both are pages of sorted indexes (see
// actors/store/discussions.ts): a page costs the same whatever the user holds.
import type { FastifyInstance } from "fastify";
import { attachmentIds } from "../../actors/mail/mail-attachment.ts";
import type { Discussion } from "../../actors/store/discussions.ts";
import { type ApiContext, userOf } from "../api-context.ts";
import { page, pageQuery } from "../schemas/common.ts";
import { pageOrBadCursor } from "./page-cursor.ts";

const tags = ["discussions"];
const discussionParams = {
  type: "object",
  required: ["discussion_id"],
  properties: { discussion_id: { type: "string", pattern: "^[A-Za-z0-9_-]{1,128}$", description: "a discussion_id of the user's messages" } },
} as const;

export function discussionRoutes(app: FastifyInstance, { store }: ApiContext): void {
  app.get<{ Querystring: { offset: number; limit: number; after?: string } }>(
    "/api/v2/discussions",
    {
      schema: {
        operationId: "ListDiscussions",
        tags,
        summary: "The user's discussions, newest activity first, paged: each with its last message, participants, count and unread count",
        querystring: pageQuery,
        response: { 200: page("Discussion") },
      },
    },
    async (request) => {
      const listed = await pageOrBadCursor(() => store.messages.listDiscussions(userOf(request).user_id, request.query));
      return { ...listed, items: listed.items.map(shown) };
    },
  );

  app.get<{ Params: { discussion_id: string }; Querystring: { offset: number; limit: number; after?: string } }>(
    "/api/v2/discussions/:discussion_id/messages",
    {
      schema: {
        operationId: "ListDiscussionMessages",
        tags,
        summary: "One discussion's messages, newest first, paged (an unknown discussion is an empty page)",
        params: discussionParams,
        querystring: pageQuery,
        response: { 200: page("Message") },
      },
    },
    async (request) => {
      const listed = await pageOrBadCursor(() => store.messages.discussionMessages(userOf(request).user_id, request.params.discussion_id, request.query));
      return { ...listed, items: listed.items.map(attachmentIds) };
    },
  );
}

function shown(discussion: Discussion) {
  return { ...discussion, last_message: attachmentIds(discussion.last_message), participants: discussion.last_message.participants };
}
