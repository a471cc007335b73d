// Redeeming a refresh token (RFC 6749 §6), or the code of a user's consent (§4.1.3), at a provider's
// token endpoint: a POST form with the client's credentials, a bounded wait and a bounded answer. A
// refusal of the refresh token itself (`invalid_grant`: revoked, expired, the user withdrew consent) is
// RefreshRefused, which only the user can mend by granting access again; a refused code is
// AuthorizationRefused (start again); everything else (the provider down, a misconfigured client, an
// answer that is not a token) is a TokenEndpointError that a later attempt may get past. None carries a
// token, a code or the client's secret.
import { HttpFailure, httpRequest } from "../network/http-request.ts";
import type { OAuth2Provider } from "./oauth2-providers.ts";

/** A token answer is a few kilobytes; more is not one. */
const MAX_ANSWER_BYTES = 64 * 1024;
/** Tokens longer than this are not stored (Microsoft's run to a few kilobytes). */
export const MAX_TOKEN_CHARS = 16 * 1024;
/** A lifetime beyond a year is taken as a year. */
const MAX_LIFETIME_S = 365 * 24 * 3600;

export interface RefreshedTokens {
  access_token: string;
  /** A new refresh token when the provider rotates them; null: keep the one used. */
  refresh_token: string | null;
  /** RFC 3339; null when the provider did not say. */
  expires_at: string | null;
}

export class RefreshRefused extends Error {
  override readonly name = "RefreshRefused";
}

export class TokenEndpointError extends Error {
  override readonly name = "TokenEndpointError";
}

export class AuthorizationRefused extends Error {
  override readonly name = "AuthorizationRefused";
}

export async function refreshAccessToken(
  provider: OAuth2Provider,
  refreshToken: string,
  options: { timeoutMs: number; now?: () => number },
): Promise<RefreshedTokens> {
  const { status, body, where } = await tokenRequest(provider, { grant_type: "refresh_token", refresh_token: refreshToken }, options.timeoutMs);
  if (status === 200) return tokensOf(body, where, (options.now ?? Date.now)());
  const code = errorCode(body);
  if (code === "invalid_grant") throw new RefreshRefused(`${where} refused the refresh token (invalid_grant): access must be granted again`);
  throw endpointError(where, status, code);
}

/**
 * Redeems the code a user's consent brought back (RFC 6749 §4.1.3), with the PKCE verifier of the
 * request that asked for it (RFC 7636). The grant must carry a refresh token: without one the account
 * would stop working within the hour.
 */
export async function exchangeAuthorizationCode(
  provider: OAuth2Provider,
  grant: { code: string; codeVerifier: string; redirectUri: string },
  options: { timeoutMs: number; now?: () => number },
): Promise<RefreshedTokens & { refresh_token: string }> {
  const form = { grant_type: "authorization_code", code: grant.code, redirect_uri: grant.redirectUri, code_verifier: grant.codeVerifier };
  const { status, body, where } = await tokenRequest(provider, form, options.timeoutMs);
  if (status !== 200) {
    const code = errorCode(body);
    if (code === "invalid_grant") throw new AuthorizationRefused(`${where} refused the authorization code (invalid_grant): start the authorization again`);
    throw endpointError(where, status, code);
  }
  const tokens = tokensOf(body, where, (options.now ?? Date.now)());
  if (tokens.refresh_token === null) {
    throw new TokenEndpointError(`${where} granted no refresh_token: ask it for offline access (authorization_params in CALIOPEN_OAUTH2_PROVIDERS)`);
  }
  return { ...tokens, refresh_token: tokens.refresh_token };
}

/** A POST of `form` to the provider's token endpoint with the client's credentials: its status and JSON body. */
async function tokenRequest(
  provider: OAuth2Provider,
  fields: Record<string, string>,
  timeoutMs: number,
): Promise<{ status: number; body: Record<string, unknown> | null; where: string }> {
  const form = new URLSearchParams(fields);
  const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded", accept: "application/json" };
  if (provider.clientAuth === "basic") {
    const encode = (value: string) => encodeURIComponent(value).replace(/%20/g, "+");
    headers.authorization = `Basic ${Buffer.from(`${encode(provider.clientId)}:${encode(provider.clientSecret)}`).toString("base64")}`;
  } else {
    form.set("client_id", provider.clientId);
    form.set("client_secret", provider.clientSecret);
  }
  const where = `OAuth2 provider ${provider.name}`;
  try {
    const answer = await httpRequest(provider.tokenUrl.href, { method: "POST", body: form.toString(), headers, timeoutMs, maxBytes: MAX_ANSWER_BYTES });
    return { status: answer.status, body: parseJson(answer.bytes), where };
  } catch (err) {
    throw new TokenEndpointError(`${where}: ${err instanceof HttpFailure ? err.message : (err as Error).message}`);
  }
}

/** RFC 6749 §5.2's error code, when the answer has a plausible one. */
function errorCode(body: Record<string, unknown> | null): string | null {
  return typeof body?.error === "string" && /^[A-Za-z0-9_.-]{1,64}$/.test(body.error) ? body.error : null;
}

function endpointError(where: string, status: number, code: string | null): TokenEndpointError {
  if (code === "invalid_client" || code === "unauthorized_client") {
    return new TokenEndpointError(`${where} refused the platform's client (${code}): check its client_id and client_secret in CALIOPEN_OAUTH2_PROVIDERS`);
  }
  return new TokenEndpointError(`${where} answered ${status}${code === null ? "" : ` (${code})`}`);
}

function tokensOf(body: Record<string, unknown> | null, where: string, nowMs: number): RefreshedTokens {
  const accessToken = body?.access_token;
  if (!isToken(accessToken)) throw new TokenEndpointError(`${where} answered without a usable access_token`);
  const refreshToken = body?.refresh_token;
  if (refreshToken !== undefined && !isToken(refreshToken)) throw new TokenEndpointError(`${where} answered an unusable refresh_token`);
  const lifetime = Number(body?.expires_in);
  const expiresAt = Number.isFinite(lifetime) && lifetime > 0 ? new Date(nowMs + Math.min(lifetime, MAX_LIFETIME_S) * 1000).toISOString() : null;
  return { access_token: accessToken, refresh_token: refreshToken ?? null, expires_at: expiresAt };
}

function isToken(value: unknown): value is string {
  return typeof value === "string" && value.length > 0 && value.length <= MAX_TOKEN_CHARS && /^[\x21-\x7e]+$/.test(value);
}

function parseJson(bytes: Uint8Array): Record<string, unknown> | null {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(bytes).toString("utf8"));
    return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
