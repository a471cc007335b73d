// Telling an identity's OAuth 2.0 credentials from named secrets, and when a grant's access token is due
// for a refresh.
import type { Credentials, OAuth2Credentials, OAuth2Grant, SecretFields } from "../store/model.ts";

export function isOAuth2Credentials(credentials: Credentials | null | undefined): credentials is OAuth2Credentials {
  return typeof credentials === "object" && credentials !== null && typeof (credentials as { oauth2?: unknown }).oauth2 === "object";
}

/** The named secrets (`username`, `password`, `token`...); null for none or for an OAuth 2.0 grant. */
export function secretFields(credentials: Credentials | null | undefined): SecretFields | null {
  return credentials == null || isOAuth2Credentials(credentials) ? null : credentials;
}

/** Whether the access token expires within `marginMs` (a grant that does not say is used until refused). */
export function expiresSoon(grant: OAuth2Grant, nowMs: number, marginMs: number): boolean {
  if (grant.expires_at === null) return false;
  const expiresAt = Date.parse(grant.expires_at);
  return !Number.isFinite(expiresAt) || expiresAt - nowMs <= marginMs;
}

/** Whether two grants are the same tokens (a refresh made elsewhere changes them). */
export function sameGrant(a: OAuth2Grant, b: OAuth2Grant): boolean {
  return a.provider === b.provider && a.access_token === b.access_token && a.refresh_token === b.refresh_token;
}
