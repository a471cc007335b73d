// Section 10's task and result: a mail's way from SMTP to the user's notification event stream.
import type { NatsEndpoint } from "../../runtime/nats-endpoint.ts";
import type { PushLatency } from "./results.ts";

export interface NotifyTask {
  endpoint: NatsEndpoint;
  /** Mails sent, one at a time. */
  mails: number;
  /** Between the starts of two mails: longer than a notification batch's quiet time, so each is one notification. */
  spacingMs: number;
}

export interface NotifyResult {
  mails: number;
  spacingMs: number;
  /** From just before the SMTP transaction until the server's 250 to DATA (the mail imported). */
  accepted: PushLatency;
  /** From just before the SMTP transaction until the notification event is read from the stream. */
  notified: PushLatency;
  /** How long the node waits for more imports of the user before it publishes (the batch's quiet time). */
  quietMs: number;
  warnings: Record<string, number>;
}
