// Configuration of the Caliopen services (the node's own settings are in node-config.ts), from
// environment variables documented in the README.
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { createSecureContext } from "node:tls";
import type { Logger } from "pino";
import { DEFAULT_IMAP_SYNC_LIMITS } from "../actors/imap/imap-limits.ts";
import type { ImapWorkerOptions } from "../actors/imap/imap-worker.ts";
import { DEFAULT_DISCOVERY_LIMITS, type KeySources } from "../actors/keys/key-discovery.ts";
import type { KeyPublishTarget } from "../actors/keys/key-publishing.ts";
import type { TwitterWorkerOptions } from "../actors/twitter/twitter-worker.ts";
import type { SmtpTarget } from "../actors/mail/smtp-transport.ts";
import { DEFAULT_MAX_ADDRESSES_PER_HEADER } from "../actors/mail/inbound-email.ts";
import { INBOUND_SMTP_DEFAULTS, type InboundSmtpOptions } from "../actors/mail/inbound-smtp-server.ts";
import { AllowListError, parseAllowedDestinations } from "../actors/network/allowed-destinations.ts";
import type { DestinationSettings } from "../actors/network/destination-policy.ts";
import type { SecretBox } from "../runtime/secret-box.ts";
import { StartupError } from "../runtime/startup-error.ts";
import type { HttpSettings } from "../api/http-settings.ts";
import { httpSettingsFromEnv } from "./http-config.ts";
import { nodeSecretKeys } from "./secret-keys.ts";

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

export interface CaliopenConfig {
  /** Seal identity credentials at rest (the first key seals, all open); every node of a deployment must hold the deployment's key. */
  secrets: SecretBox;
  /** Where the HTTP API listens, and its edges (rate limits, timeouts, CORS, TLS, trusted proxies; defaults when left out); null: no API on this node. */
  api: { host: string; port: number; http?: HttpSettings } | null;
  /** How long the API waits for a `deliver` reply (the contract says 30 s). */
  deliverTimeoutMs: number;
  mail: MailConfig;
  /** IMAP workers' settings (tests shorten the retry pauses). */
  imap: Partial<ImapWorkerOptions>;
  /** Twitter workers' settings: the X API and the app's OAuth 1.0a consumer key (a secret: never logged). */
  twitter: Partial<TwitterWorkerOptions>;
  /** Where public keys are looked up (discover_key) and published (publish_key / delete_key). */
  keys: { discovery: KeySources; publishing: KeyPublishTarget };
  /** Which servers named by users or contacts may be reached, and the TLS exceptions and extra CAs for them. */
  destinations: DestinationSettings;
}

export function caliopenConfigFromEnv(env: NodeJS.ProcessEnv, dataDir: string, logger: Logger): CaliopenConfig {
  const smtpListen = listenAddress(env.CALIOPEN_SMTP, "CALIOPEN_SMTP", "127.0.0.1:2525");
  const apiListen = listenAddress(env.CALIOPEN_HTTP, "CALIOPEN_HTTP", "127.0.0.1:8080");
  const deliverTimeoutMs = integer(env.CALIOPEN_DELIVER_TIMEOUT_MS, "CALIOPEN_DELIVER_TIMEOUT_MS", 30_000);
  // Read before the secret key, which may be made on first start: a mistake here then leaves nothing behind.
  const api = apiListen === null ? null : { ...apiListen, http: httpSettingsFromEnv(env, deliverTimeoutMs) };
  return {
    secrets: nodeSecretKeys(env, dataDir, logger),
    api,
    deliverTimeoutMs,
    mail: {
      host: env.CALIOPEN_MAIL_HOST?.trim() || hostname(),
      relay: { ...hostPort(env.CALIOPEN_SMTP_RELAY?.trim() || "127.0.0.1:25", "CALIOPEN_SMTP_RELAY") },
      smtp:
        smtpListen === null
          ? null
          : {
              ...smtpListen,
              maxSize: integer(env.CALIOPEN_SMTP_MAX_SIZE, "CALIOPEN_SMTP_MAX_SIZE", 25 * 1024 * 1024),
              maxRecipients: integer(env.CALIOPEN_SMTP_MAX_RECIPIENTS, "CALIOPEN_SMTP_MAX_RECIPIENTS", 100),
              maxClients: integer(env.CALIOPEN_SMTP_MAX_CLIENTS, "CALIOPEN_SMTP_MAX_CLIENTS", INBOUND_SMTP_DEFAULTS.maxClients),
              maxClientsPerIp: integer(env.CALIOPEN_SMTP_MAX_CLIENTS_PER_IP, "CALIOPEN_SMTP_MAX_CLIENTS_PER_IP", INBOUND_SMTP_DEFAULTS.maxClientsPerIp),
              idleTimeoutMs: integer(env.CALIOPEN_SMTP_IDLE_TIMEOUT_MS, "CALIOPEN_SMTP_IDLE_TIMEOUT_MS", INBOUND_SMTP_DEFAULTS.idleTimeoutMs),
              transactionTimeoutMs: integer(env.CALIOPEN_SMTP_TRANSACTION_TIMEOUT_MS, "CALIOPEN_SMTP_TRANSACTION_TIMEOUT_MS", INBOUND_SMTP_DEFAULTS.transactionTimeoutMs),
              tls: smtpTls(env),
            },
      inbound: {
        maxAddressesPerHeader: integer(env.CALIOPEN_MAIL_MAX_ADDRESSES_PER_HEADER, "CALIOPEN_MAIL_MAX_ADDRESSES_PER_HEADER", DEFAULT_MAX_ADDRESSES_PER_HEADER),
      },
    },
    imap: {
      push: onOff(env.CALIOPEN_IMAP_PUSH, "CALIOPEN_IMAP_PUSH", true),
      maxMessageBytes: integer(env.CALIOPEN_IMAP_MAX_MESSAGE_SIZE, "CALIOPEN_IMAP_MAX_MESSAGE_SIZE", DEFAULT_IMAP_SYNC_LIMITS.maxMessageBytes),
      timeoutMs: integer(env.CALIOPEN_IMAP_TIMEOUT_MS, "CALIOPEN_IMAP_TIMEOUT_MS", DEFAULT_IMAP_SYNC_LIMITS.timeoutMs),
      syncMaxMs: integer(env.CALIOPEN_IMAP_SYNC_MAX_MS, "CALIOPEN_IMAP_SYNC_MAX_MS", DEFAULT_IMAP_SYNC_LIMITS.syncMaxMs),
    },
    keys: keysConfig(env),
    destinations: destinationsConfig(env),
    twitter: {
      x: {
        ...(env.CALIOPEN_X_API_URL?.trim() && { baseUrl: env.CALIOPEN_X_API_URL.trim() }),
        ...(env.CALIOPEN_X_APP_KEY?.trim() && { appKey: env.CALIOPEN_X_APP_KEY.trim() }),
        ...(env.CALIOPEN_X_APP_SECRET?.trim() && { appSecret: env.CALIOPEN_X_APP_SECRET.trim() }),
      },
    },
  };
}

/** `host:port`, `port` (on loopback), or `off`. */
function listenAddress(raw: string | undefined, name: string, fallback: string): { host: string; port: number } | null {
  const value = raw?.trim() || fallback;
  if (value === "off") return null;
  const match = /^(?:(.+):)?([0-9]{1,5})$/.exec(value);
  const port = Number(match?.[2]);
  if (match === null || port > 65535) throw new StartupError(`${name} must be host:port, a port, or off, got "${value}"`);
  return { host: (match[1] ?? "127.0.0.1").replace(/^\[(.*)\]$/, "$1"), port };
}

/**
 * CALIOPEN_KEYSERVER (an HKP server, `hkps://keys.openpgp.org` by default, `off` for none),
 * CALIOPEN_KEY_DISCOVERY_WKD (on), CALIOPEN_KEY_DISCOVERY_DNS (a resolver `host[:port]`, or `system`; off by
 * default), CALIOPEN_WKD_DIR + CALIOPEN_WKD_DOMAINS (the platform's own Web Key Directory: a web root and
 * the mail domains it speaks for; none by default); discovery's limits: CALIOPEN_KEY_DISCOVERY_MAX_ADDRESSES,
 * CALIOPEN_KEY_DISCOVERY_CONCURRENCY, CALIOPEN_KEYSERVER_MAX_ANSWER, CALIOPEN_WKD_MAX_ANSWER.
 */
function keysConfig(env: NodeJS.ProcessEnv): CaliopenConfig["keys"] {
  const server = env.CALIOPEN_KEYSERVER?.trim() || "hkps://keys.openpgp.org";
  const hkp = server === "off" ? null : server;
  const dns = env.CALIOPEN_KEY_DISCOVERY_DNS?.trim();
  const wkdDir = env.CALIOPEN_WKD_DIR?.trim();
  const wkdDomains = (env.CALIOPEN_WKD_DOMAINS ?? "").split(",").map((domain) => domain.trim().toLowerCase()).filter(Boolean);
  if ((wkdDir === undefined || wkdDir === "") !== (wkdDomains.length === 0)) throw new StartupError("CALIOPEN_WKD_DIR and CALIOPEN_WKD_DOMAINS go together");
  return {
    discovery: {
      hkp,
      wkd: onOff(env.CALIOPEN_KEY_DISCOVERY_WKD, "CALIOPEN_KEY_DISCOVERY_WKD", true),
      dns: dns === undefined || dns === "" || dns === "off" ? null : dns === "system" ? {} : { resolver: dns },
      timeoutMs: 10_000,
      maxAddresses: integer(env.CALIOPEN_KEY_DISCOVERY_MAX_ADDRESSES, "CALIOPEN_KEY_DISCOVERY_MAX_ADDRESSES", DEFAULT_DISCOVERY_LIMITS.maxAddresses),
      concurrency: integer(env.CALIOPEN_KEY_DISCOVERY_CONCURRENCY, "CALIOPEN_KEY_DISCOVERY_CONCURRENCY", DEFAULT_DISCOVERY_LIMITS.concurrency),
      maxAnswerBytes: {
        hkp: integer(env.CALIOPEN_KEYSERVER_MAX_ANSWER, "CALIOPEN_KEYSERVER_MAX_ANSWER", DEFAULT_DISCOVERY_LIMITS.maxAnswerBytes.hkp),
        wkd: integer(env.CALIOPEN_WKD_MAX_ANSWER, "CALIOPEN_WKD_MAX_ANSWER", DEFAULT_DISCOVERY_LIMITS.maxAnswerBytes.wkd),
      },
    },
    publishing: { hkp, wkd: wkdDir ? { dir: wkdDir, domains: wkdDomains } : null },
  };
}

/**
 * CALIOPEN_SMTP_TLS_CERT + CALIOPEN_SMTP_TLS_KEY: PEM files of the certificate (chain) and its key, for
 * STARTTLS. Both or neither; checked here, so that a node with a bad pair refuses to start (the key's
 * content is never part of the message).
 */
function smtpTls(env: NodeJS.ProcessEnv): { key: string; cert: string } | null {
  const certPath = env.CALIOPEN_SMTP_TLS_CERT?.trim() || null;
  const keyPath = env.CALIOPEN_SMTP_TLS_KEY?.trim() || null;
  if (certPath === null && keyPath === null) return null;
  if (certPath === null || keyPath === null) throw new StartupError("CALIOPEN_SMTP_TLS_CERT and CALIOPEN_SMTP_TLS_KEY go together");
  const read = (path: string, name: string) => {
    try {
      return readFileSync(path, "utf8");
    } catch (err) {
      throw new StartupError(`${name}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  const tls = { cert: read(certPath, "CALIOPEN_SMTP_TLS_CERT"), key: read(keyPath, "CALIOPEN_SMTP_TLS_KEY") };
  try {
    createSecureContext(tls);
  } catch (err) {
    throw new StartupError(`CALIOPEN_SMTP_TLS_CERT / CALIOPEN_SMTP_TLS_KEY (${certPath}, ${keyPath}) are not a usable certificate and key: ${(err as Error).message}`);
  }
  return tls;
}

/**
 * CALIOPEN_ALLOWED_DESTINATIONS (networks and servers users may name besides public addresses, with
 * their TLS exceptions; none by default) and CALIOPEN_DESTINATION_CA (a PEM file of CAs trusted for
 * users' servers besides Node's own). Giving CAs replaces Node's default store in those connections, so
 * NODE_EXTRA_CA_CERTS, which would otherwise be in it, is added too.
 */
function destinationsConfig(env: NodeJS.ProcessEnv): DestinationSettings {
  let allow: DestinationSettings["allow"];
  try {
    allow = parseAllowedDestinations(env.CALIOPEN_ALLOWED_DESTINATIONS ?? "");
  } catch (err) {
    if (err instanceof AllowListError) throw new StartupError(`CALIOPEN_ALLOWED_DESTINATIONS: ${err.message}`);
    throw err;
  }
  const caFile = env.CALIOPEN_DESTINATION_CA?.trim();
  if (!caFile) return { allow, ca: [] };
  const extra = env.NODE_EXTRA_CA_CERTS?.trim();
  return { allow, ca: [pemFile(caFile, "CALIOPEN_DESTINATION_CA"), ...(extra ? [pemFile(extra, "NODE_EXTRA_CA_CERTS")] : [])] };
}

function pemFile(path: string, name: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new StartupError(`${name}: cannot read ${path}: ${(err as Error).message}`);
  }
  if (!text.includes("-----BEGIN CERTIFICATE-----")) throw new StartupError(`${name}: ${path} holds no PEM certificate`);
  return text;
}

function hostPort(value: string, name: string): { host: string; port: number } {
  const match = /^(.+):([0-9]{1,5})$/.exec(value);
  if (match === null || Number(match[2]) > 65535) throw new StartupError(`${name} must be host:port, got "${value}"`);
  return { host: match[1] as string, port: Number(match[2]) };
}

function onOff(raw: string | undefined, name: string, fallback: boolean): boolean {
  const value = raw?.trim().toLowerCase();
  if (value === undefined || value === "") return fallback;
  if (["on", "true", "1", "yes"].includes(value)) return true;
  if (["off", "false", "0", "no"].includes(value)) return false;
  throw new StartupError(`${name} must be on or off, got "${raw}"`);
}

function integer(raw: string | undefined, name: string, fallback: number): number {
  if (raw === undefined || raw.trim() === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new StartupError(`${name} must be a positive integer, got "${raw}"`);
  return value;
}
