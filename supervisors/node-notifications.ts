// The users' notifications of new mail on a node (contract/events-table.ts): their history (a JetStream
// stream, made or brought to the operator's bounds), what publishes them, the batches that gather a
// user's imports into one, and what the API reads them with. The services hand imports and sends to it.
import { jetstream } from "@nats-io/jetstream";
import type { Logger } from "pino";
import { NewMessageBatches } from "../actors/notifications/new-message-batches.ts";
import { NotificationPublisher } from "../actors/notifications/notification-publisher.ts";
import { DEFAULT_NOTIFICATION_HISTORY_LIMITS, type NotificationHistoryLimits, openNotificationStream } from "../actors/notifications/notification-stream.ts";
import { notifyingSend, type SentDraftOrder } from "../actors/notifications/sent-notification.ts";
import type { Message } from "../actors/store/model.ts";
import type { Store } from "../actors/store/store.ts";
import { NotificationFeed } from "../api/notification-feed.ts";
import type { Reply } from "../runtime/reply.ts";
import type { ServiceDeps } from "./services.ts";

/** How long a stopping node waits for its last notifications to reach JetStream. */
const SETTLE_ON_STOP_MS = 2_000;

export interface NodeNotifications {
  publisher: NotificationPublisher;
  /** What the API reads the users' notifications with. */
  feed: NotificationFeed;
  /** A message an import stored for the first time (the inbound actors' `onImported`). */
  imported(message: Message, identityId: string): void;
  /** A `deliver` of the SMTP bridge, which notifies the user of the draft it sent. */
  sending(order: SentDraftOrder, send: () => Promise<Reply>): Promise<Reply>;
  /** Publishes what waits and lets it reach JetStream (the node is stopping). */
  close(): Promise<void>;
}

export async function nodeNotifications(deps: ServiceDeps, store: Store, limits: NotificationHistoryLimits | undefined): Promise<NodeNotifications> {
  const stream = await openNotificationStream(deps.nc, deps.subjects, limits ?? DEFAULT_NOTIFICATION_HISTORY_LIMITS, deps.replicas);
  const logger: Logger = deps.logger.child({ service: "notifications" });
  const publisher = new NotificationPublisher(jetstream(deps.nc), deps.subjects, logger, deps.metrics.registry);
  const batches = new NewMessageBatches(publisher);
  return {
    publisher,
    feed: await NotificationFeed.open(deps.nc, deps.subjects, stream),
    imported: (message, identityId) => batches.imported(message, identityId),
    sending: (order, send) => notifyingSend({ store, sink: publisher, logger }, order, send, (reply) => reply),
    async close() {
      batches.flushAll();
      await publisher.settle(SETTLE_ON_STOP_MS);
    },
  };
}
