// The OAuth 2.0 providers of the platform's mail accounts (Google, Microsoft...), as the operator lists
// them in a JSON file (CALIOPEN_OAUTH2_PROVIDERS): where each one's refresh tokens are redeemed and the
// platform's client registration there. An identity's grant names its provider; nothing a user sends
// chooses a token endpoint, so refreshing never reaches a server the operator did not name.
//
//   { "google": { "token_url": "https://oauth2.googleapis.com/token", "client_id": "…", "client_secret": "…" } }
//
// `client_auth` is `body` (client_id and client_secret in the form, which Google and Microsoft take) or
// `basic` (HTTP Basic, RFC 6749 §2.3.1). The token URL must be https, or http on a loopback address.
//
// With `authorization_url` and `redirect_uri` (the platform's callback as registered at the provider,
// `https://<api>/api/v2/oauth2/callback`), users connect accounts through the provider's consent page
// (authorization code with PKCE, RFC 6749 §4.1 and RFC 7636): `scope` is asked for, and
// `authorization_params` adds what the provider needs to hand out a refresh token (Google:
// `{"access_type": "offline", "prompt": "consent"}`).

export interface OAuth2Provider {
  name: string;
  tokenUrl: URL;
  clientId: string;
  /** A secret: never logged, never part of an error. */
  clientSecret: string;
  clientAuth: "body" | "basic";
  /** Where users grant access (null: grants are only given with the identity, obtained elsewhere). */
  authorization: AuthorizationEndpoint | null;
}

export interface AuthorizationEndpoint {
  url: URL;
  /** The platform's callback, exactly as registered at the provider. */
  redirectUri: URL;
  /** Space-separated scopes asked for (null: the provider's default). */
  scope: string | null;
  /** Further query parameters of the consent page, set by the operator. */
  params: Readonly<Record<string, string>>;
}

/** What the platform sets itself on the consent page's address: an operator's parameter may not replace them. */
const OWN_AUTHORIZATION_PARAMS = new Set([
  "response_type",
  "client_id",
  "redirect_uri",
  "scope",
  "state",
  "code_challenge",
  "code_challenge_method",
  "login_hint",
]);
const MAX_AUTHORIZATION_PARAMS = 16;

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
  const url = (field: string): URL => {
    const given = text(field);
    let parsed: URL;
    try {
      parsed = new URL(given);
    } catch {
      throw new OAuth2ProvidersError(`${name}.${field}: not a URL`);
    }
    if (parsed.username !== "" || parsed.password !== "")
      throw new OAuth2ProvidersError(`${name}.${field}: put the client's credentials in client_id and client_secret, not in the URL`);
    if (parsed.protocol !== "https:" && !(parsed.protocol === "http:" && isLoopback(parsed.hostname))) {
      throw new OAuth2ProvidersError(`${name}.${field}: must be https (http only on a loopback address)`);
    }
    return parsed;
  };
  const clientAuth = record.client_auth ?? "body";
  if (clientAuth !== "body" && clientAuth !== "basic") throw new OAuth2ProvidersError(`${name}.client_auth: "body" or "basic"`);
  return {
    name,
    tokenUrl: url("token_url"),
    clientId: text("client_id"),
    clientSecret: text("client_secret"),
    clientAuth,
    authorization: authorizationEndpoint(name, record, text, url),
  };
}

function authorizationEndpoint(
  name: string,
  record: Record<string, unknown>,
  text: (field: string) => string,
  url: (field: string) => URL,
): AuthorizationEndpoint | null {
  const given = ["authorization_url", "redirect_uri"].filter((field) => record[field] !== undefined);
  if (given.length === 0) {
    for (const field of ["scope", "authorization_params"])
      if (record[field] !== undefined) throw new OAuth2ProvidersError(`${name}.${field}: goes with authorization_url and redirect_uri`);
    return null;
  }
  if (given.length === 1) throw new OAuth2ProvidersError(`${name}: authorization_url and redirect_uri go together`);
  const params: Record<string, string> = {};
  const extra = record.authorization_params ?? {};
  if (typeof extra !== "object" || extra === null || Array.isArray(extra))
    throw new OAuth2ProvidersError(`${name}.authorization_params: must be an object of strings`);
  const entries = Object.entries(extra);
  if (entries.length > MAX_AUTHORIZATION_PARAMS) throw new OAuth2ProvidersError(`${name}.authorization_params: at most ${MAX_AUTHORIZATION_PARAMS}`);
  for (const [key, value] of entries) {
    if (OWN_AUTHORIZATION_PARAMS.has(key)) throw new OAuth2ProvidersError(`${name}.authorization_params: ${key} is set by the platform`);
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(key) || typeof value !== "string" || value.length > MAX_FIELD)
      throw new OAuth2ProvidersError(`${name}.authorization_params: each a short name and a string of at most ${MAX_FIELD} characters`);
    params[key] = value;
  }
  return { url: url("authorization_url"), redirectUri: url("redirect_uri"), scope: record.scope === undefined ? null : text("scope"), params };
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
