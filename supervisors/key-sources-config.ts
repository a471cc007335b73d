// Where public keys are looked up and published, from the environment (documented in the README).
import { DEFAULT_DISCOVERY_LIMITS, type KeySources } from "../actors/keys/key-discovery.ts";
import type { KeyPublishTarget } from "../actors/keys/key-publishing.ts";
import { StartupError } from "../runtime/startup-error.ts";
import { integerSetting, listSetting, onOffSetting, textSetting } from "./env-settings.ts";

export interface KeysConfig {
  discovery: KeySources;
  publishing: KeyPublishTarget;
}

/**
 * CALIOPEN_KEYSERVER (an HKP server, `hkps://keys.openpgp.org` by default, `off` for none),
 * CALIOPEN_KEY_DISCOVERY_WKD (on), CALIOPEN_KEY_DISCOVERY_DNS (a resolver `host[:port]`, or `system`; off by
 * default), CALIOPEN_WKD_DIR + CALIOPEN_WKD_DOMAINS (the platform's own Web Key Directory: a web root and
 * the mail domains it speaks for; none by default); discovery's limits: CALIOPEN_KEY_DISCOVERY_MAX_ADDRESSES,
 * CALIOPEN_KEY_DISCOVERY_CONCURRENCY, CALIOPEN_KEYSERVER_MAX_ANSWER, CALIOPEN_WKD_MAX_ANSWER.
 */
export function keysConfigFromEnv(env: NodeJS.ProcessEnv): KeysConfig {
  const server = textSetting(env, "CALIOPEN_KEYSERVER") ?? "hkps://keys.openpgp.org";
  const hkp = server === "off" ? null : server;
  const dns = textSetting(env, "CALIOPEN_KEY_DISCOVERY_DNS");
  const wkdDir = textSetting(env, "CALIOPEN_WKD_DIR");
  const wkdDomains = listSetting(env, "CALIOPEN_WKD_DOMAINS").map((domain) => domain.toLowerCase());
  if ((wkdDir === undefined) !== (wkdDomains.length === 0)) throw new StartupError("CALIOPEN_WKD_DIR and CALIOPEN_WKD_DOMAINS go together");
  const limits = DEFAULT_DISCOVERY_LIMITS;
  return {
    discovery: {
      hkp,
      wkd: onOffSetting(env, "CALIOPEN_KEY_DISCOVERY_WKD", true),
      dns: dns === undefined || dns === "off" ? null : dns === "system" ? {} : { resolver: dns },
      timeoutMs: 10_000,
      maxAddresses: integerSetting(env, "CALIOPEN_KEY_DISCOVERY_MAX_ADDRESSES", limits.maxAddresses),
      concurrency: integerSetting(env, "CALIOPEN_KEY_DISCOVERY_CONCURRENCY", limits.concurrency),
      maxAnswerBytes: {
        hkp: integerSetting(env, "CALIOPEN_KEYSERVER_MAX_ANSWER", limits.maxAnswerBytes.hkp, "number of bytes"),
        wkd: integerSetting(env, "CALIOPEN_WKD_MAX_ANSWER", limits.maxAnswerBytes.wkd, "number of bytes"),
      },
    },
    publishing: { hkp, wkd: wkdDir === undefined ? null : { dir: wkdDir, domains: wkdDomains } },
  };
}
