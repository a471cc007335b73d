// The platform's mail settings from the environment (documented in the README): its host name, the
// relay for local identities, the inbound SMTP server and its limits, inbound processing's limits.
import { hostname } from "node:os";
import { DEFAULT_MAX_ADDRESSES_PER_HEADER } from "../actors/mail/inbound-email.ts";
import { INBOUND_SMTP_DEFAULTS, type InboundSmtpOptions } from "../actors/mail/inbound-smtp-server.ts";
import type { SmtpTarget } from "../actors/mail/smtp-transport.ts";
import { hostPortSetting, integerSetting, listenSetting, textSetting, tlsPairSetting } from "./env-settings.ts";

export interface MailConfig {
  /** The platform's mail host name: Message-IDs, EHLO, the SMTP banner. */
  host: string;
  /** Where mail sent from local identities goes (`CALIOPEN_SMTP_RELAY`). */
  relay: SmtpTarget;
  /** The inbound SMTP server; null: none on this node. Limits left out take their defaults. */
  smtp: Omit<InboundSmtpOptions, "serverName"> | null;
  /** Inbound processing (process_inbound on inboundSMTP); absent: the defaults. */
  inbound?: { maxAddressesPerHeader: number };
}

export function mailConfigFromEnv(env: NodeJS.ProcessEnv): MailConfig {
  return {
    host: textSetting(env, "CALIOPEN_MAIL_HOST") ?? hostname(),
    relay: hostPortSetting(env, "CALIOPEN_SMTP_RELAY", "127.0.0.1:25"),
    smtp: inboundSmtpFromEnv(env),
    inbound: {
      maxAddressesPerHeader: integerSetting(env, "CALIOPEN_MAIL_MAX_ADDRESSES_PER_HEADER", DEFAULT_MAX_ADDRESSES_PER_HEADER),
    },
  };
}

/** CALIOPEN_SMTP (where to listen, or off) and its limits; CALIOPEN_SMTP_TLS_CERT + _KEY for STARTTLS. */
function inboundSmtpFromEnv(env: NodeJS.ProcessEnv): MailConfig["smtp"] {
  const listen = listenSetting(env, "CALIOPEN_SMTP", "127.0.0.1:2525");
  if (listen === null) return null;
  const milliseconds = "number of milliseconds";
  return {
    ...listen,
    maxSize: integerSetting(env, "CALIOPEN_SMTP_MAX_SIZE", 25 * 1024 * 1024),
    maxRecipients: integerSetting(env, "CALIOPEN_SMTP_MAX_RECIPIENTS", 100),
    maxClients: integerSetting(env, "CALIOPEN_SMTP_MAX_CLIENTS", INBOUND_SMTP_DEFAULTS.maxClients),
    maxClientsPerIp: integerSetting(env, "CALIOPEN_SMTP_MAX_CLIENTS_PER_IP", INBOUND_SMTP_DEFAULTS.maxClientsPerIp),
    idleTimeoutMs: integerSetting(env, "CALIOPEN_SMTP_IDLE_TIMEOUT_MS", INBOUND_SMTP_DEFAULTS.idleTimeoutMs, milliseconds),
    transactionTimeoutMs: integerSetting(env, "CALIOPEN_SMTP_TRANSACTION_TIMEOUT_MS", INBOUND_SMTP_DEFAULTS.transactionTimeoutMs, milliseconds),
    tls: tlsPairSetting(env, "CALIOPEN_SMTP_TLS_CERT", "CALIOPEN_SMTP_TLS_KEY"),
  };
}
