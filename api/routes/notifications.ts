// The user's notifications of new mail (contract/events-table.ts): a live stream of server-sent events,
// resumable with Last-Event-ID from the 7 days of history JetStream keeps, and pages of the recent ones.
// A user reads only their own: the feed is chosen by the authenticated user, never by the request.
import type { FastifyInstance } from "fastify";
import { type ApiContext, userOf } from "../api-context.ts";
import { authenticate } from "../authenticate.ts";
import { startEventStream } from "../event-stream-slots.ts";
import { badRequest, HttpError } from "../http-error.ts";
import type { FeedStart, LiveFeed, NotificationFeed } from "../notification-feed.ts";
import { type NotificationStreamLimits, NotificationStreams } from "../notification-streams.ts";

const tags = ["notifications"];
/** The largest page. */
export const MAX_NOTIFICATIONS_PAGE = 100;
/** Stream sequences are JetStream's unsigned 64-bit counters; anything past 2^53 is not one this API gave. */
const SEQUENCE = { type: "integer", minimum: 0, maximum: Number.MAX_SAFE_INTEGER } as const;

export function notificationRoutes(app: FastifyInstance, context: ApiContext, limits: NotificationStreamLimits): void {
  // An API built without the node's notifications (to describe it, or in tests of other routes) still lists them.
  const feedOf = (): NotificationFeed => {
    if (context.notifications === undefined) throw new HttpError(503, "this API serves no notifications");
    return context.notifications;
  };
  const streams = new NotificationStreams(limits, context.logger);
  app.addHook("preClose", async () => streams.close());

  app.get<{ Querystring: { since?: number; before?: number; limit: number } }>(
    "/api/v2/notifications",
    {
      schema: {
        operationId: "ListNotifications",
        tags,
        summary:
          "The user's recent notifications (kept 7 days): the newest first (then `before` the last one shown), or the oldest after `since` (a `seq`, such as the last event of a stream)",
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            since: { ...SEQUENCE, description: "only notifications after this `seq`, oldest first" },
            before: { ...SEQUENCE, minimum: 1, description: "only notifications before this `seq`, newest first (the `next` of the previous page)" },
            limit: { type: "integer", minimum: 1, maximum: MAX_NOTIFICATIONS_PAGE, default: 20 },
          },
        },
        response: {
          200: {
            type: "object",
            properties: {
              items: { type: "array", items: { $ref: "Notification#" } },
              next: {
                type: ["integer", "null"],
                description: "for the following page, `since` (with `since`) or `before` (without); null when nothing is left",
              },
            },
          },
        },
      },
    },
    async (request) => {
      const { since, before, limit } = request.query;
      const userId = userOf(request).user_id;
      if (since !== undefined && before !== undefined) throw badRequest("before", "give `since` or `before`, not both");
      const feed = feedOf();
      return since !== undefined ? feed.since(userId, since, limit) : feed.newest(userId, before ?? null, limit);
    },
  );

  app.get<{ Headers: { "last-event-id"?: string } }>(
    "/api/v2/notifications/stream",
    {
      schema: {
        operationId: "StreamNotifications",
        tags,
        summary:
          "The user's notifications as they come, as server-sent events: first `ready` ({after, gap?}), then each notification as an event `notification` whose `id` is its `seq`; " +
          "a client that reconnects with Last-Event-ID gets what it missed (within the 7 days kept; `gap` says when some may be lost). A comment line every 15 s keeps it open",
        headers: {
          type: "object",
          properties: { "last-event-id": { type: "string", pattern: "^[0-9]{1,15}$", description: "the `id` of the last event received: resume after it" } },
        },
        response: {
          200: {
            description:
              "events until the client or the node closes the stream; 429 (Retry-After) when the token or the node holds as many streams as allowed (CALIOPEN_NOTIFICATIONS_MAX_STREAMS*)",
            content: { "text/event-stream": { schema: { type: "string" } } },
          },
        },
      },
    },
    async (request, reply) => {
      const user = userOf(request);
      const feed = feedOf();
      const authorization = request.headers.authorization;
      // Admission has just read this token; read again for its id, which bounds the streams per token.
      const { tokenId } = await authenticate(context.store, authorization);
      const slot = streams.reserve(tokenId, reply, async () => (await authenticate(context.store, authorization)).user.user_id === user.user_id);
      const lastEventId = request.headers["last-event-id"];
      const start: FeedStart = lastEventId === undefined ? "now" : { after: Number(lastEventId) };
      let live: LiveFeed;
      try {
        live = await feed.live(user.user_id, start);
      } catch (err) {
        streams.release(slot);
        throw err;
      }
      streams.serve(slot, startEventStream(reply), live);
    },
  );
}
