// The OAuth 2.0 providers of the platform's mail accounts (Google, Microsoft...), as the operator lists
// them in a JSON file (CALIOPEN_OAUTH2_PROVIDERS): where each one's refresh tokens are redeemed and the
// platform's client registration there. An identity's grant names its provider; nothing a user sends
// chooses a token endpoint, so refreshing never reaches a server the operator did not name.
//
//   { "google": { "token_url": "https://oauth2.googleapis.com/token", "client_id": "…", "client_secret": "…" } }
//
// `client_auth` is `body` (client_id and client_secret in the form, which Google and Microsoft take) or
// `basic` (HTTP Basic, RFC 6749 §2.3.1). The token URL must be https, or http on a loopback address.

export interface OAuth2Provider {
  name: string;
  tokenUrl: URL;
  clientId: string;
  /** A secret: never logged, never part of an error. */
  clientSecret: string;
  clientAuth: "body" | "basic";
}

export type OAuth2Providers = ReadonlyMap<string, OAuth2Provider>;

export const NO_OAUTH2_PROVIDERS: OAuth2Providers = new Map();

/** A provider's name, as an identity's `credentials.oauth2.provider` names it. */
export const PROVIDER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const MAX_PROVIDERS = 64;
const MAX_FIELD = 2048;

export class OAuth2ProvidersError extends Error {
  override readonly name = "OAuth2ProvidersError";
}

/** Parses the operator's file; a mistake is an OAuth2ProvidersError naming the provider and field (never a secret's value). */
export function parseOAuth2Providers(text: string): OAuth2Providers {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new OAuth2ProvidersError(`not JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new OAuth2ProvidersError("must be a JSON object of providers by name");
  const entries = Object.entries(parsed);
  if (entries.length > MAX_PROVIDERS) throw new OAuth2ProvidersError(`at most ${MAX_PROVIDERS} providers`);
  const providers = new Map<string, OAuth2Provider>();
  for (const [name, fields] of entries) {
    if (!PROVIDER_NAME.test(name)) throw new OAuth2ProvidersError(`"${name.slice(0, 64)}" is not a provider name (letters, digits, _ . -; 64 at most)`);
    providers.set(name, provider(name, fields));
  }
  return providers;
}

function provider(name: string, fields: unknown): OAuth2Provider {
  if (typeof fields !== "object" || fields === null || Array.isArray(fields)) throw new OAuth2ProvidersError(`${name}: must be an object`);
  const record = fields as Record<string, unknown>;
  const text = (field: string): string => {
    const value = record[field];
    if (typeof value !== "string" || value.trim() === "" || value.length > MAX_FIELD) {
      throw new OAuth2ProvidersError(`${name}.${field}: a non-empty string of at most ${MAX_FIELD} characters is needed`);
    }
    return value.trim();
  };
  let tokenUrl: URL;
  try {
    tokenUrl = new URL(text("token_url"));
  } catch {
    throw new OAuth2ProvidersError(`${name}.token_url: not a URL`);
  }
  if (tokenUrl.username !== "" || tokenUrl.password !== "")
    throw new OAuth2ProvidersError(`${name}.token_url: put the client's credentials in client_id and client_secret, not in the URL`);
  if (tokenUrl.protocol !== "https:" && !(tokenUrl.protocol === "http:" && isLoopback(tokenUrl.hostname))) {
    throw new OAuth2ProvidersError(`${name}.token_url: must be https (http only on a loopback address)`);
  }
  const clientAuth = record.client_auth ?? "body";
  if (clientAuth !== "body" && clientAuth !== "basic") throw new OAuth2ProvidersError(`${name}.client_auth: "body" or "basic"`);
  return { name, tokenUrl, clientId: text("client_id"), clientSecret: text("client_secret"), clientAuth };
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
