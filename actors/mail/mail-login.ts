// How a remote mail account logs in to its IMAP or SMTP server: a user name and password, or, for
// OAuth 2.0 credentials, a user name and a fresh access token (SASL XOAUTH2). A token the server refuses
// is refreshed and tried once more, since a provider may revoke a token before the time it announced.
// Logins live only in the calls that use them: never in an actor's context or a log line.
import { type AccessTokens, CredentialsRefused } from "../oauth2/access-tokens.ts";
import { isOAuth2Credentials } from "../oauth2/oauth2-credentials.ts";
import { TokenEndpointError } from "../oauth2/token-endpoint.ts";
import type { Identity } from "../store/model.ts";
import type { Store } from "../store/store.ts";

export type MailLogin = { user: string; pass: string } | { user: string; accessToken: string };

/** `in`: the IMAP server (`username`/`password`, or `inusername`/`inpassword`); `out`: SMTP (`outusername`/`outpassword` first). */
export type MailSide = "in" | "out";

export class NoMailLogin extends Error {
  override readonly name: string = "NoMailLogin";
}

/** The account has no credentials at all (created to be granted access through its provider's consent page). */
export class NoCredentials extends NoMailLogin {
  override readonly name = "NoCredentials";
}

export class MailLogins {
  constructor(
    private readonly store: Store,
    /** null: no OAuth 2.0 provider is configured, and OAuth 2.0 accounts cannot log in. */
    private readonly tokens: AccessTokens | null,
  ) {}

  /** The account's login; `refused`: the server just refused this one (a token is then refreshed). */
  async login(identity: Identity, side: MailSide, refused: MailLogin | null = null): Promise<MailLogin> {
    const credentials = await this.store.identities.credentials(identity.user_id, identity.identity_id);
    const protocol = side === "in" ? "IMAP" : "SMTP";
    if (isOAuth2Credentials(credentials)) {
      if (this.tokens === null)
        throw new NoMailLogin(`identity ${identity.identity_id} logs in with OAuth2, and no OAuth2 provider is configured (CALIOPEN_OAUTH2_PROVIDERS)`);
      const wasRefused = refused !== null && "accessToken" in refused && refused.accessToken === credentials.oauth2.access_token;
      const grant = await this.tokens.fresh(identity, credentials.oauth2, wasRefused);
      return { user: credentials.username ?? identity.identifier, accessToken: grant.access_token };
    }
    if (credentials === null || Object.keys(credentials).length === 0) {
      throw new NoCredentials(
        `identity ${identity.identity_id} has no ${protocol} credentials yet: give a username and password, or grant access at its OAuth2 provider`,
      );
    }
    const fields = credentials;
    const [user, pass] =
      side === "in"
        ? [fields.username ?? fields.inusername, fields.password ?? fields.inpassword]
        : [fields.outusername ?? fields.username, fields.outpassword ?? fields.password];
    if (!user || pass === undefined) {
      throw new NoMailLogin(`identity ${identity.identity_id} has no ${protocol} credentials (a username and password, or an OAuth2 grant)`);
    }
    return { user, pass };
  }

  /**
   * Runs `attempt` with the account's login (`known`: one looked up already). When the server refuses an
   * access token (`isRefusal`), the token is refreshed and `attempt` runs once more; a password refused
   * is the caller's failure.
   */
  async use<T>(
    identity: Identity,
    side: MailSide,
    attempt: (login: MailLogin) => Promise<T>,
    isRefusal: (err: unknown) => boolean,
    known: MailLogin | null = null,
  ): Promise<T> {
    const login = known ?? (await this.login(identity, side));
    try {
      return await attempt(login);
    } catch (err) {
      if (!("accessToken" in login) || !isRefusal(err)) throw err;
      return attempt(await this.login(identity, side, login));
    }
  }
}

/** Whether a failure means that only the user can make the account log in again (a refresh token refused, no credentials at all). */
export function needsNewCredentials(err: unknown): boolean {
  return err instanceof CredentialsRefused || err instanceof NoCredentials;
}

/** Whether looking the login up failed for a reason to tell the user (rather than a fault of the node's). */
export function isLoginFailure(err: unknown): err is Error {
  return err instanceof NoMailLogin || err instanceof CredentialsRefused || err instanceof TokenEndpointError;
}
