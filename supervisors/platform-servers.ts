// The platform's own servers, which no user may name as their IMAP or SMTP server or reach through a
// contact's domain: the SMTP relay (it trusts this node) and the NATS servers (the bus and the store).
// Read at every check, since a NATS cluster tells its clients of its servers as they come and go.
import type { NatsConnection } from "@nats-io/transport-node";
import type { ProtectedService } from "../actors/network/destination-policy.ts";
import type { MailConfig } from "./mail-config.ts";

export function platformServers(mail: MailConfig, nc: NatsConnection): () => ProtectedService[] {
  return () => [
    { what: "the platform's SMTP relay (CALIOPEN_SMTP_RELAY)", host: mail.relay.host, port: mail.relay.port },
    ...nc.getServers().map((server) => ({ what: "a NATS server of the platform", host: server.hostname, port: server.port })),
  ];
}
