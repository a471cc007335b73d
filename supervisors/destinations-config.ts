// Which servers named by users or contacts a node may reach, from the environment (README, Security).
import { AllowListError, parseAllowedDestinations } from "../actors/network/allowed-destinations.ts";
import type { DestinationSettings } from "../actors/network/destination-policy.ts";
import { StartupError } from "../runtime/startup-error.ts";
import { certificatesSetting, textSetting } from "./env-settings.ts";

/**
 * CALIOPEN_ALLOWED_DESTINATIONS (networks and servers users may name besides public addresses, with
 * their TLS exceptions; none by default) and CALIOPEN_DESTINATION_CA (a PEM file of CAs trusted for
 * users' servers besides Node's own). Giving CAs replaces Node's default store in those connections, so
 * NODE_EXTRA_CA_CERTS, which would otherwise be in it, is added too.
 */
export function destinationsFromEnv(env: NodeJS.ProcessEnv): DestinationSettings {
  let allow: DestinationSettings["allow"];
  try {
    allow = parseAllowedDestinations(env.CALIOPEN_ALLOWED_DESTINATIONS ?? "");
  } catch (err) {
    if (err instanceof AllowListError) throw new StartupError(`CALIOPEN_ALLOWED_DESTINATIONS: ${err.message}`);
    throw err;
  }
  const caFile = textSetting(env, "CALIOPEN_DESTINATION_CA");
  if (caFile === undefined) return { allow, ca: [] };
  const extra = textSetting(env, "NODE_EXTRA_CA_CERTS");
  return {
    allow,
    ca: [certificatesSetting(caFile, "CALIOPEN_DESTINATION_CA"), ...(extra === undefined ? [] : [certificatesSetting(extra, "NODE_EXTRA_CA_CERTS")])],
  };
}
