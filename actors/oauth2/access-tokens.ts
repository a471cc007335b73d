// Keeping each identity's OAuth 2.0 access token fresh. The stored grant is used while it has more than
// `marginMs` left; past that, or once a server refused its token, the refresh token is redeemed at the
// grant's provider and the new tokens are stored sealed by compare-and-swap against the grant that was
// refreshed. Two refreshes (a sync and a send, two nodes) therefore never overwrite each other: the one
// that lands second keeps what the first stored, and a refusal of a refresh token that another refresh
// has just rotated takes the new grant rather than calling the account broken. Within a node, the
// refreshes of one identity share one request.
import type { Logger } from "pino";
import type { IdentityStore } from "../store/identities.ts";
import type { OAuth2Grant } from "../store/model.ts";
import { expiresSoon, isOAuth2Credentials, sameGrant } from "./oauth2-credentials.ts";
import type { OAuth2Providers } from "./oauth2-providers.ts";
import { RefreshRefused, refreshAccessToken, TokenEndpointError } from "./token-endpoint.ts";

export interface AccessTokenOptions {
  /** How long one token request may take. */
  timeoutMs: number;
  /** A token with less than this left is refreshed before use (a sync may last a while). */
  marginMs: number;
  now: () => number;
}

export const DEFAULT_ACCESS_TOKEN_OPTIONS: AccessTokenOptions = { timeoutMs: 10_000, marginMs: 5 * 60_000, now: Date.now };

/** The provider will not refresh this account's grant any more: only the user can grant access again. */
export class CredentialsRefused extends Error {
  override readonly name = "CredentialsRefused";
}

type AccountIds = { user_id: string; identity_id: string };

export class AccessTokens {
  private readonly refreshing = new Map<string, Promise<OAuth2Grant>>();
  private readonly options: AccessTokenOptions;

  constructor(
    private readonly identities: IdentityStore,
    private readonly providers: OAuth2Providers,
    private readonly logger: Logger,
    options: Partial<AccessTokenOptions> = {},
  ) {
    this.options = { ...DEFAULT_ACCESS_TOKEN_OPTIONS, ...options };
  }

  /** A grant whose access token can be used now: `grant` while fresh (and not `refused` by a server), else a refreshed one. */
  async fresh(account: AccountIds, grant: OAuth2Grant, refused = false): Promise<OAuth2Grant> {
    if (!refused && !expiresSoon(grant, this.options.now(), this.options.marginMs)) return grant;
    const key = JSON.stringify([account.user_id, account.identity_id]);
    let running = this.refreshing.get(key);
    if (running === undefined) {
      running = this.refresh(account, grant).finally(() => this.refreshing.delete(key));
      this.refreshing.set(key, running);
    }
    return running;
  }

  private async refresh(account: AccountIds, grant: OAuth2Grant): Promise<OAuth2Grant> {
    const provider = this.providers.get(grant.provider);
    if (provider === undefined) throw new TokenEndpointError(`OAuth2 provider "${grant.provider}" is not configured on this node (CALIOPEN_OAUTH2_PROVIDERS)`);
    const log = this.logger.child({ user_id: account.user_id, identity_id: account.identity_id, provider: provider.name });
    let next: OAuth2Grant;
    try {
      const tokens = await refreshAccessToken(provider, grant.refresh_token, this.options);
      next = {
        provider: grant.provider,
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token ?? grant.refresh_token,
        expires_at: tokens.expires_at,
      };
    } catch (err) {
      if (!(err instanceof RefreshRefused)) throw err;
      const stored = await this.identities.credentials(account.user_id, account.identity_id);
      if (isOAuth2Credentials(stored) && !sameGrant(stored.oauth2, grant)) {
        log.info("OAuth2 refresh token refused, but another refresh replaced it: its tokens are used");
        return stored.oauth2;
      }
      log.warn({ reason: err.message }, "OAuth2 refresh token refused: the account needs new credentials");
      throw new CredentialsRefused(err.message);
    }
    const stored = await this.storeRefreshed(account, grant, next);
    if (!isOAuth2Credentials(stored)) throw new Error(`identity ${account.identity_id} no longer has OAuth2 credentials`);
    if (sameGrant(stored.oauth2, next))
      log.info({ expires_at: next.expires_at, rotated: next.refresh_token !== grant.refresh_token }, "OAuth2 access token refreshed");
    else log.info("OAuth2 access token refreshed elsewhere first: the stored one is used");
    return stored.oauth2;
  }

  /**
   * Stores the refreshed grant unless another refresh replaced `grant` first; what is stored after. A
   * provider that rotates refresh tokens has already revoked the old one, so a store that is briefly
   * away (NATS reconnecting) is waited for rather than losing the only valid refresh token.
   */
  private async storeRefreshed(account: AccountIds, grant: OAuth2Grant, next: OAuth2Grant) {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.identities.swapCredentials(account.user_id, account.identity_id, (current) =>
          isOAuth2Credentials(current) && sameGrant(current.oauth2, grant) ? { ...current, oauth2: next } : null,
        );
      } catch (err) {
        if (attempt >= STORE_ATTEMPTS) throw err;
        await new Promise((resolve) => setTimeout(resolve, STORE_RETRY_MS * attempt));
      }
    }
  }
}

/** Tries at storing a refreshed grant, STORE_RETRY_MS × n apart (about 10 s in all). */
const STORE_ATTEMPTS = 5;
const STORE_RETRY_MS = 1_000;
