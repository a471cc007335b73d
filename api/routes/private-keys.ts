// The user's own OpenPGP private keys: stored (checked, unlocked with its passphrase when it has one, then
// sealed with the deployment's secret key), listed by their public description, deleted. The secret
// never comes back out of the API, and neither it nor the passphrase is ever logged.
import type { FastifyInstance } from "fastify";
import { MAX_PASSPHRASE_CHARS, MAX_PRIVATE_KEY_CHARS, PrivateKeyCheckBusy, PrivateKeyRefused, parsePrivateKey } from "../../actors/keys/parse-private-key.ts";
import { MAX_PRIVATE_KEYS_PER_USER } from "../../actors/store/private-keys.ts";
import { type ApiContext, userOf } from "../api-context.ts";
import { badRequest, HttpError, notFound } from "../http-error.ts";

const tags = ["private keys"];

const privateKeySchema = {
  type: "object",
  description: "a private key stored for the user, described by its public part only (the secret is never returned)",
  properties: {
    fingerprint: { type: "string" },
    key_id: { type: "string", description: "the last 16 hex digits of the fingerprint" },
    algorithm: { type: "string" },
    size: { type: "integer" },
    created: { type: "string", description: "when the key was made" },
    expire_date: { type: ["string", "null"] },
    user_ids: { type: "array", items: { type: "string" } },
    emails: { type: "array", items: { type: "string" } },
    was_protected: { type: "boolean", description: "it came protected by a passphrase, which unlocked it once and was not kept" },
    public_key: { type: "string", description: "its public part, armored: what your copy of encrypted mail is encrypted to, and what to publish" },
    date_insert: { type: "string" },
  },
} as const;

const storeBody = {
  type: "object",
  additionalProperties: false,
  required: ["private_key"],
  properties: {
    private_key: {
      type: "string",
      minLength: 1,
      maxLength: MAX_PRIVATE_KEY_CHARS,
      description: "one ASCII-armored OpenPGP secret key (gpg --armor --export-secret-keys), able to sign and to encrypt",
    },
    passphrase: {
      type: "string",
      maxLength: MAX_PASSPHRASE_CHARS,
      description: "the key's passphrase, when it has one: it unlocks the key once and is not kept",
    },
  },
} as const;

const fingerprintParams = {
  type: "object",
  required: ["fingerprint"],
  properties: { fingerprint: { type: "string", pattern: "^([0-9A-Fa-f]{40}|[0-9A-Fa-f]{64})$" } },
} as const;

export function privateKeyRoutes(app: FastifyInstance, { store }: ApiContext): void {
  app.get(
    "/api/v2/keys/private",
    {
      schema: {
        operationId: "ListPrivateKeys",
        tags,
        summary: "The user's stored private keys (public description only)",
        response: { 200: { type: "object", properties: { keys: { type: "array", items: privateKeySchema }, total: { type: "integer" } } } },
      },
    },
    async (request) => {
      const keys = await store.privateKeys.list(userOf(request).user_id);
      return { keys, total: keys.length };
    },
  );

  app.post<{ Body: { private_key: string; passphrase?: string } }>(
    "/api/v2/keys/private",
    {
      schema: {
        operationId: "StorePrivateKey",
        tags,
        summary: `Store a private key that signs the mail you send and that your copy of encrypted mail is encrypted to (at most ${MAX_PRIVATE_KEYS_PER_USER})`,
        body: storeBody,
        response: { 201: privateKeySchema },
      },
    },
    async (request, reply) => {
      const user = userOf(request);
      let parsed: Awaited<ReturnType<typeof parsePrivateKey>>;
      try {
        parsed = await parsePrivateKey(request.body.private_key, request.body.passphrase);
      } catch (err) {
        if (err instanceof PrivateKeyRefused) throw badRequest(err.field, err.message);
        if (err instanceof PrivateKeyCheckBusy) throw new HttpError(503, err.message);
        throw err;
      }
      return reply.code(201).send(await store.privateKeys.add(user.user_id, parsed));
    },
  );

  app.delete<{ Params: { fingerprint: string } }>(
    "/api/v2/keys/private/:fingerprint",
    {
      schema: {
        operationId: "DeletePrivateKey",
        tags,
        summary: "Forget a stored private key",
        params: fingerprintParams,
        response: { 204: { type: "null" } },
      },
    },
    async (request, reply) => {
      const fingerprint = request.params.fingerprint.toUpperCase();
      if (!(await store.privateKeys.delete(userOf(request).user_id, fingerprint))) throw notFound(`private key ${fingerprint}`);
      return reply.code(204).send();
    },
  );
}
