// The outside world as actor machines see it: publish, reply, request, dead letters, log.
import type { NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "pino";
import type { ActorPorts } from "./actor-family.ts";
import type { DeadLetters } from "./dead-letters.ts";
import { decodeBusJson, encodeJson } from "./json.ts";
import type { Requester } from "./requester.ts";
import { isSafeReplySubject, type Subjects } from "./subjects.ts";

export function createPorts(nc: NatsConnection, subjects: Subjects, requester: Requester, deadLetters: DeadLetters, logger: Logger): ActorPorts {
  return {
    logger,
    publish(subject, payload) {
      nc.publish(subjects.wire(subject), encodeJson(payload));
    },
    reply(replyTo, body) {
      if (replyTo === undefined || replyTo === "") return;
      // Checked where requests come in; a reply subject kept in a snapshot is checked again here.
      if (!isSafeReplySubject(replyTo)) return logger.warn({ replyLength: replyTo.length }, "reply not sent: unusable reply subject");
      nc.publish(replyTo, encodeJson(body));
    },
    async request(subject, payload, timeoutMs) {
      const msg = await requester.request(subjects.wire(subject), encodeJson(payload), timeoutMs);
      const decoded = decodeBusJson(msg.data);
      if (!decoded.ok) throw new Error(`reply on ${subject} is not JSON: ${decoded.error}`);
      return decoded.value;
    },
    deadLetter(subject, reason, payload) {
      deadLetters.record(subjects.wire(subject), reason, encodeJson(payload));
    },
  };
}
