// Remote identities (CreateUserIdentity, PatchUserIdentity, DeleteUserIdentity) and the user's local
// identities. The identities worker is told of every change on `identitiesWorker`. Their servers must
// pass the destination policy, and a new server needs the credentials again (identity-servers.ts).
import type { FastifyInstance } from "fastify";
import { scheduleError } from "../../actors/identities/poll-schedule.ts";
import { isOAuth2Credentials } from "../../actors/oauth2/oauth2-credentials.ts";
import { NO_OAUTH2_PROVIDERS, type OAuth2Providers } from "../../actors/oauth2/oauth2-providers.ts";
import type { Credentials, Identity, IdentityInfos, IdentityProtocol, OAuth2Credentials } from "../../actors/store/model.ts";
import { type ApiContext, userOf } from "../api-context.ts";
import { badRequest, HttpError, notFound } from "../http-error.ts";
import { uuid } from "../schemas/common.ts";
import { createIdentityBody, patchIdentityBody } from "../schemas/identities.ts";
import { checkServerAddresses, checkServerChange } from "./identity-servers.ts";

interface CreateIdentity {
  protocol: IdentityProtocol;
  identifier: string;
  display_name?: string;
  status?: "active" | "inactive";
  credentials?: Credentials;
  infos?: Pick<IdentityInfos, "inserver" | "outserver" | "poll_interval" | "poll_schedule" | "mailboxes">;
}

type PatchIdentity = Partial<Omit<CreateIdentity, "protocol" | "identifier">>;

const identityParams = { type: "object", required: ["identity_id"], properties: { identity_id: uuid } } as const;
const tags = ["identities"];

/** What each protocol needs to be synced at all, and a schedule the poller can follow. */
function checkRemote(protocol: IdentityProtocol, infos: Partial<IdentityInfos>, credentials: Credentials | undefined, providers: OAuth2Providers): void {
  const schedule = typeof infos.poll_schedule === "string" && infos.poll_schedule.trim() !== "" ? infos.poll_schedule : null;
  const unusable = schedule === null ? null : scheduleError(schedule);
  if (unusable !== null) throw badRequest("infos.poll_schedule", unusable);
  if ((protocol === "email" || protocol === "imap") && infos.inserver === undefined) {
    throw badRequest("infos.inserver", `an ${protocol} identity needs infos.inserver (the IMAP server, host:port)`);
  }
  if (credentials === undefined) return;
  if (isOAuth2Credentials(credentials)) {
    checkOAuth2(protocol, credentials, providers);
    return;
  }
  if (protocol !== "twitter" && (credentials.username === undefined || credentials.password === undefined)) {
    throw badRequest("credentials", "mail credentials need username and password, or an oauth2 grant");
  }
  if (protocol === "twitter" && credentials.access_token === undefined && (credentials.token === undefined || credentials.secret === undefined)) {
    throw badRequest("credentials", "twitter credentials need token and secret (OAuth 1.0a) or access_token (OAuth 2)");
  }
}

/** A mail account's OAuth 2.0 grant: from a provider the operator configured, with nothing beside it but the login's user name. */
function checkOAuth2(protocol: IdentityProtocol, credentials: OAuth2Credentials, providers: OAuth2Providers): void {
  if (protocol === "twitter") throw badRequest("credentials.oauth2", "twitter credentials take access_token, or token and secret, not an oauth2 grant");
  const others = Object.keys(credentials).filter((field) => field !== "oauth2" && field !== "username");
  if (others.length > 0) throw badRequest("credentials", `an oauth2 grant goes with username alone, not ${others.join(", ")}`);
  const { provider, expires_at: expiresAt } = credentials.oauth2;
  if (!providers.has(provider)) {
    const known = [...providers.keys()];
    throw badRequest(
      "credentials.oauth2.provider",
      `no OAuth2 provider "${provider}" is configured here${known.length === 0 ? "" : ` (known: ${known.join(", ")})`}`,
    );
  }
  if (expiresAt != null && !Number.isFinite(Date.parse(expiresAt))) throw badRequest("credentials.oauth2.expires_at", "not a date");
}

/** The credentials as stored: an OAuth 2.0 grant's expiry in one form (UTC, milliseconds), or null when not given. */
function storedCredentials(credentials: Credentials): Credentials {
  if (!isOAuth2Credentials(credentials)) return credentials;
  const expiresAt = credentials.oauth2.expires_at;
  return { ...credentials, oauth2: { ...credentials.oauth2, expires_at: expiresAt == null ? null : new Date(expiresAt).toISOString() } };
}

export function identityRoutes(app: FastifyInstance, { store, emitter, destinations, oauth2Providers = NO_OAUTH2_PROVIDERS }: ApiContext): void {
  const load = async (userId: string, identityId: string): Promise<Identity> => {
    const identity = await store.identities.get(userId, identityId);
    if (identity === null || identity.status === "deleted" || identity.type !== "remote") throw notFound(`remote identity ${identityId}`);
    return identity;
  };

  app.get(
    "/api/v2/identities/remotes",
    {
      schema: {
        operationId: "ListRemoteIdentities",
        tags,
        summary: "Remote identities with their sync status (last/next poll, last sync, last error)",
        response: { 200: { type: "object", properties: { identities: { type: "array", items: { $ref: "Identity#" } }, total: { type: "integer" } } } },
      },
    },
    async (request) => {
      const identities = await store.identities.list(userOf(request).user_id, { type: "remote" });
      return { identities, total: identities.length };
    },
  );

  app.get(
    "/api/v2/identities/locals",
    {
      schema: {
        operationId: "ListLocalIdentities",
        tags,
        summary: "The user's own addresses on this platform",
        response: { 200: { type: "object", properties: { identities: { type: "array", items: { $ref: "Identity#" } }, total: { type: "integer" } } } },
      },
    },
    async (request) => {
      const identities = await store.identities.list(userOf(request).user_id, { type: "local" });
      return { identities, total: identities.length };
    },
  );

  app.post<{ Body: CreateIdentity }>(
    "/api/v2/identities/remotes",
    {
      schema: {
        operationId: "CreateUserIdentity",
        tags,
        summary: "Add a remote account; emits add_identity on identitiesWorker",
        body: createIdentityBody,
        response: { 201: { $ref: "Identity#" } },
      },
    },
    async (request, reply) => {
      const user = userOf(request);
      const body = request.body;
      checkRemote(body.protocol, body.infos ?? {}, body.credentials, oauth2Providers);
      checkServerAddresses(destinations, body.infos);
      const identity = await store.identities.create({
        user_id: user.user_id,
        type: "remote",
        protocol: body.protocol,
        identifier: body.identifier,
        display_name: body.display_name ?? body.identifier,
        status: body.status ?? "active",
        infos: { ...body.infos },
        ...(body.credentials !== undefined && { credentials: storedCredentials(body.credentials) }),
      });
      await emitter.publish("identitiesWorker", "add_identity", { identity_id: identity.identity_id, user_id: user.user_id });
      return reply.code(201).send(identity);
    },
  );

  app.get<{ Params: { identity_id: string } }>(
    "/api/v2/identities/remotes/:identity_id",
    { schema: { operationId: "GetUserIdentity", tags, summary: "One remote identity", params: identityParams, response: { 200: { $ref: "Identity#" } } } },
    async (request) => load(userOf(request).user_id, request.params.identity_id),
  );

  app.patch<{ Params: { identity_id: string }; Body: PatchIdentity }>(
    "/api/v2/identities/remotes/:identity_id",
    {
      schema: {
        operationId: "PatchUserIdentity",
        tags,
        summary: "Change a remote identity; emits update_identity",
        params: identityParams,
        body: patchIdentityBody,
        response: { 200: { $ref: "Identity#" } },
      },
    },
    async (request) => {
      const user = userOf(request);
      const current = await load(user.user_id, request.params.identity_id);
      const body = request.body;
      checkRemote(current.protocol, { ...current.infos, ...body.infos }, body.credentials, oauth2Providers);
      checkServerAddresses(destinations, body.infos);
      const updated = await store.identities.update(user.user_id, current.identity_id, (identity) => {
        if (identity.status === "deleted") throw notFound(`remote identity ${identity.identity_id}`);
        checkServerChange(identity, body.infos, body.credentials);
        return {
          fields: {
            ...(body.display_name !== undefined && { display_name: body.display_name }),
            ...(body.status !== undefined && { status: body.status }),
            ...(body.infos !== undefined && { infos: { ...identity.infos, ...body.infos } }),
          },
          ...(body.credentials !== undefined && { credentials: storedCredentials(body.credentials) }),
        };
      });
      if (updated === null) throw notFound(`remote identity ${current.identity_id}`);
      await emitter.publish("identitiesWorker", "update_identity", { identity_id: updated.identity_id, user_id: user.user_id });
      return updated;
    },
  );

  app.delete<{ Params: { identity_id: string } }>(
    "/api/v2/identities/remotes/:identity_id",
    {
      schema: {
        operationId: "DeleteUserIdentity",
        tags,
        summary: "Delete a remote identity; emits delete_identity",
        params: identityParams,
        response: { 204: { type: "null" } },
      },
    },
    async (request, reply) => {
      const user = userOf(request);
      const current = await load(user.user_id, request.params.identity_id);
      const deleted = await store.identities.markDeleted(user.user_id, current.identity_id);
      if (deleted === null) throw new HttpError(409, "the identity was deleted meanwhile");
      await emitter.publish("identitiesWorker", "delete_identity", { identity_id: current.identity_id, user_id: user.user_id });
      return reply.code(204).send();
    },
  );
}
