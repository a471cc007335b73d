// Connecting a mail account through its provider's consent page (OAuth 2.0 authorization code with PKCE,
// RFC 6749 §4.1 and RFC 7636): the user asks for the page's address for one of their identities,
// consents there, and the provider sends the browser back to the callback, which redeems the code and
// stores the grant on the identity as PatchUserIdentity would (sealed, then update_identity: the worker
// reloads and syncs). The callback takes no bearer token: the state it brings back is the proof, good
// once and for 10 minutes, and it is counted against the caller's address like any request without one.
// No code, token, verifier or client secret is ever part of an answer.
import { createHash, randomBytes } from "node:crypto";
import type { FastifyInstance } from "fastify";
import { NO_OAUTH2_PROVIDERS, PROVIDER_NAME } from "../../actors/oauth2/oauth2-providers.ts";
import { AuthorizationRefused, exchangeAuthorizationCode, TokenEndpointError } from "../../actors/oauth2/token-endpoint.ts";
import { AUTHORIZATION_TTL_MS, OAuth2Authorizations } from "../../actors/store/oauth2-authorizations.ts";
import { type ApiContext, userOf } from "../api-context.ts";
import { badRequest, HttpError, notFound } from "../http-error.ts";
import { uuid } from "../schemas/common.ts";

/** Where providers send the user back: the `redirect_uri` the operator registers with each provider. */
export const OAUTH2_CALLBACK_PATH = "/api/v2/oauth2/callback";
/** How long the callback waits for the provider's token endpoint. */
const TOKEN_TIMEOUT_MS = 10_000;
const MAX_CODE_CHARS = 4096;

const tags = ["identities"];
const identityParams = { type: "object", required: ["identity_id"], properties: { identity_id: uuid } } as const;

const authorizationBody = {
  type: "object",
  additionalProperties: false,
  required: ["provider"],
  properties: {
    provider: {
      type: "string",
      pattern: PROVIDER_NAME.source,
      description: "one of the operator's providers that has a consent page (GET /api/v2/oauth2/providers)",
    },
    username: { type: "string", minLength: 1, maxLength: 320, description: "the login's user name at the mail server, when it is not the identity's address" },
  },
} as const;

const callbackQuery = {
  type: "object",
  properties: {
    state: { type: "string", maxLength: 128 },
    code: { type: "string", minLength: 1, maxLength: MAX_CODE_CHARS, pattern: "^[\\x21-\\x7e]+$" },
    error: { type: "string", maxLength: 256 },
  },
} as const;

interface AuthorizationRequest {
  provider: string;
  username?: string;
}

interface CallbackQuery {
  state?: string;
  code?: string;
  error?: string;
}

export function oauth2AuthorizationRoutes(app: FastifyInstance, { store, emitter, oauth2Providers: providers = NO_OAUTH2_PROVIDERS }: ApiContext): void {
  app.get(
    "/api/v2/oauth2/providers",
    {
      schema: {
        operationId: "ListOAuth2Providers",
        tags,
        summary: "The OAuth 2.0 providers mail accounts may use; `authorization`: whether the platform leads users through its consent page",
        response: {
          200: {
            type: "object",
            properties: {
              providers: {
                type: "array",
                items: { type: "object", properties: { name: { type: "string" }, authorization: { type: "boolean" } } },
              },
            },
          },
        },
      },
    },
    async () => ({ providers: [...providers.values()].map((provider) => ({ name: provider.name, authorization: provider.authorization !== null })) }),
  );

  app.post<{ Params: { identity_id: string }; Body: AuthorizationRequest }>(
    "/api/v2/identities/remotes/:identity_id/oauth2",
    {
      schema: {
        operationId: "AuthorizeUserIdentity",
        tags,
        summary: `Start connecting a mail account at its OAuth 2.0 provider: the address of the provider's consent page, good for ${AUTHORIZATION_TTL_MS / 60_000} minutes`,
        params: identityParams,
        body: authorizationBody,
        response: {
          201: {
            type: "object",
            properties: {
              authorization_url: { type: "string", description: "send the user's browser there; the provider brings it back to the callback" },
              expires_at: { type: "string" },
            },
          },
        },
      },
    },
    async (request, reply) => {
      const user = userOf(request);
      const identity = await store.identities.get(user.user_id, request.params.identity_id);
      if (identity === null || identity.status === "deleted" || identity.type !== "remote") throw notFound(`remote identity ${request.params.identity_id}`);
      if (identity.protocol !== "email" && identity.protocol !== "imap") throw badRequest("identity_id", "only mail accounts (email, imap) log in with OAuth2");
      const provider = providers.get(request.body.provider);
      if (provider === undefined) throw badRequest("provider", `no OAuth2 provider "${request.body.provider}" is configured here`);
      const consent = provider.authorization;
      if (consent === null)
        throw badRequest(
          "provider",
          `provider ${provider.name} has no consent page configured (authorization_url): give the grant with the identity's credentials`,
        );
      const verifier = randomBytes(32).toString("base64url");
      const { state, expires_at } = await store.oauth2Authorizations.begin({
        user_id: user.user_id,
        identity_id: identity.identity_id,
        provider: provider.name,
        username: request.body.username ?? null,
        code_verifier: verifier,
      });
      const url = new URL(consent.url);
      const params: Record<string, string> = {
        ...consent.params,
        response_type: "code",
        client_id: provider.clientId,
        redirect_uri: consent.redirectUri.href,
        ...(consent.scope !== null && { scope: consent.scope }),
        state,
        code_challenge: createHash("sha256").update(verifier).digest("base64url"),
        code_challenge_method: "S256",
        login_hint: identity.identifier,
      };
      for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
      return reply.code(201).send({ authorization_url: url.href, expires_at });
    },
  );

  app.get<{ Querystring: CallbackQuery }>(
    OAUTH2_CALLBACK_PATH,
    {
      schema: {
        operationId: "OAuth2Callback",
        tags,
        summary: "Where the provider sends the user back (no bearer token: the state is the proof); stores the grant and emits update_identity",
        querystring: callbackQuery,
        response: {
          200: { type: "object", properties: { identity_id: { type: "string" }, provider: { type: "string" }, connected: { type: "boolean" } } },
        },
      },
    },
    async (request) => {
      const { state, code, error } = request.query;
      if (state === undefined || !OAuth2Authorizations.isState(state)) throw badRequest("state", "the callback needs the state the provider was given");
      const pending = await store.oauth2Authorizations.take(state);
      if (pending === null) throw badRequest("state", "no authorization in progress has this state (unknown, used already, or expired): start again");
      if (error !== undefined)
        throw new HttpError(400, `the provider did not grant access (${/^[A-Za-z0-9_.-]{1,64}$/.test(error) ? error : "unreadable error"}): start again`);
      if (code === undefined) throw badRequest("code", "the provider sent neither a code nor an error");
      const provider = providers.get(pending.provider);
      if (provider?.authorization == null) throw new HttpError(400, `provider ${pending.provider} is no longer configured for authorizations here`);
      let grant: Awaited<ReturnType<typeof exchangeAuthorizationCode>>;
      try {
        grant = await exchangeAuthorizationCode(
          provider,
          { code, codeVerifier: pending.code_verifier, redirectUri: provider.authorization.redirectUri.href },
          { timeoutMs: TOKEN_TIMEOUT_MS },
        );
      } catch (err) {
        if (err instanceof AuthorizationRefused) throw new HttpError(400, err.message);
        if (err instanceof TokenEndpointError) throw new HttpError(502, err.message);
        throw err;
      }
      const updated = await store.identities.update(pending.user_id, pending.identity_id, (identity) => {
        if (identity.status === "deleted") throw notFound(`remote identity ${identity.identity_id}`);
        return {
          fields: {},
          credentials: { ...(pending.username !== null && { username: pending.username }), oauth2: { provider: provider.name, ...grant } },
        };
      });
      if (updated === null) throw notFound(`remote identity ${pending.identity_id}`);
      await emitter.publish("identitiesWorker", "update_identity", { identity_id: updated.identity_id, user_id: pending.user_id });
      return { identity_id: updated.identity_id, provider: provider.name, connected: true };
    },
  );
}
