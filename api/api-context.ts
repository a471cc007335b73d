// What every route of the API works with: the store, the order emitter, the destination policy, the
// logger; and the user a request acts for.
import type { NatsConnection } from "@nats-io/transport-node";
import type { FastifyRequest } from "fastify";
import type { Logger } from "pino";
import type { DestinationPolicy } from "../actors/network/destination-policy.ts";
import type { OAuth2Providers } from "../actors/oauth2/oauth2-providers.ts";
import type { User } from "../actors/store/model.ts";
import type { Store } from "../actors/store/store.ts";
import type { Subjects } from "../runtime/subjects.ts";
import { HttpError } from "./http-error.ts";
import type { NotificationFeed } from "./notification-feed.ts";
import type { OrderEmitter } from "./order-emitter.ts";

export interface ApiContext {
  store: Store;
  emitter: OrderEmitter;
  /** Which servers users may name for their accounts (checked without DNS here, fully at connect time); public addresses only by default. */
  destinations?: DestinationPolicy;
  /** The OAuth 2.0 providers mail accounts may name in `credentials.oauth2`; none when left out. */
  oauth2Providers?: OAuth2Providers;
  logger: Logger;
  /** How long a `deliver` request waits for its reply (the contract says 30 s). */
  deliverTimeoutMs: number;
  /** The largest mail the platform takes and sends (CALIOPEN_SMTP_MAX_SIZE): a draft's files must fit in it. */
  maxMailBytes?: number;
  /** The node's Prometheus figures, served at /metrics to admins; no route when left out. */
  metrics?: { scrape(): Promise<{ contentType: string; text: string }> };
  /** The node's connection, for the dashboard's data (the debug subjects); no dashboard data routes when left out. */
  dashboard?: { nc: NatsConnection; subjects: Subjects };
  /** The users' notifications (their JetStream history); no notification routes when left out. */
  notifications?: NotificationFeed;
}

/** The user a route acts for; admission.ts sets it before any route runs. */
export function userOf(request: FastifyRequest): User {
  if (request.user === null) throw new HttpError(401, "a bearer token is required");
  return request.user;
}
