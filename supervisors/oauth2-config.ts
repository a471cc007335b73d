// CALIOPEN_OAUTH2_PROVIDERS: the JSON file of the OAuth 2.0 providers mail accounts may use (README,
// OAuth2 accounts). Unset: none, and identities with OAuth 2.0 credentials are refused by the API.
import { NO_OAUTH2_PROVIDERS, type OAuth2Providers, OAuth2ProvidersError, parseOAuth2Providers } from "../actors/oauth2/oauth2-providers.ts";
import { StartupError } from "../runtime/startup-error.ts";
import { fileSetting, textSetting } from "./env-settings.ts";

const NAME = "CALIOPEN_OAUTH2_PROVIDERS";
const MAX_FILE_BYTES = 256 * 1024;

export function oauth2ProvidersFromEnv(env: NodeJS.ProcessEnv): OAuth2Providers {
  const path = textSetting(env, NAME);
  if (path === undefined) return NO_OAUTH2_PROVIDERS;
  const text = fileSetting(path, NAME);
  if (Buffer.byteLength(text) > MAX_FILE_BYTES) throw new StartupError(`${NAME}: ${path} is larger than ${MAX_FILE_BYTES} bytes`);
  try {
    return parseOAuth2Providers(text);
  } catch (err) {
    if (err instanceof OAuth2ProvidersError) throw new StartupError(`${NAME}: ${path}: ${err.message}`);
    throw err;
  }
}
