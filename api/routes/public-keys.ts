// Public keys of a contact (CreatePGPPubKey, DeletePubKey): stored, then `publish_key` / `delete_key`
// on keyAction.
import type { FastifyInstance } from "fastify";
import { KeyParseError, parsePublicKey } from "../../actors/keys/parse-public-key.ts";
import { storedPublicKey } from "../../actors/keys/stored-public-key.ts";
import { type ApiContext, userOf } from "../api-context.ts";
import { badRequest, notFound } from "../http-error.ts";
import { uuid } from "../schemas/common.ts";
import { createKeyBody } from "../schemas/keys.ts";
import { contactParams } from "./contacts.ts";

const tags = ["public keys"];
const keyParams = {
  type: "object",
  required: ["contact_id", "key_id"],
  properties: { contact_id: uuid, key_id: { type: "string", pattern: "^[0-9A-Fa-f]{16}$" } },
} as const;

export function publicKeyRoutes(app: FastifyInstance, { store, emitter }: ApiContext): void {
  const contactOf = async (userId: string, contactId: string) => {
    const contact = await store.contacts.get(userId, contactId);
    if (contact === null) throw notFound(`contact ${contactId}`);
    return contact;
  };

  app.get<{ Params: { contact_id: string } }>(
    "/api/v2/contacts/:contact_id/publickeys",
    {
      schema: {
        operationId: "ListPubKeys",
        tags,
        summary: "The contact's public keys",
        params: contactParams,
        response: { 200: { type: "object", properties: { keys: { type: "array", items: { $ref: "PublicKey#" } }, total: { type: "integer" } } } },
      },
    },
    async (request) => {
      const user = userOf(request);
      const contact = await contactOf(user.user_id, request.params.contact_id);
      const keys = await store.keys.list(user.user_id, contact.contact_id);
      return { keys, total: keys.length };
    },
  );

  app.post<{ Params: { contact_id: string }; Body: { key: string; label?: string } }>(
    "/api/v2/contacts/:contact_id/publickeys",
    {
      schema: {
        operationId: "CreatePGPPubKey",
        tags,
        summary: "Add a public key; emits publish_key on keyAction",
        params: contactParams,
        body: createKeyBody,
        response: { 201: { $ref: "PublicKey#" } },
      },
    },
    async (request, reply) => {
      const user = userOf(request);
      const contact = await contactOf(user.user_id, request.params.contact_id);
      let parsed: Awaited<ReturnType<typeof parsePublicKey>>;
      try {
        parsed = await parsePublicKey(request.body.key);
      } catch (err) {
        if (err instanceof KeyParseError) throw badRequest("key", err.message);
        throw err;
      }
      if (parsed.revoked) throw badRequest("key", "this key is revoked");
      const label = request.body.label ?? parsed.emails[0] ?? parsed.key_id;
      const key = await store.keys.add(storedPublicKey(parsed, { user_id: user.user_id, resource_id: contact.contact_id, label, source: "user" }));
      await emitter.publish("keyAction", "publish_key", { key_id: key.key_id, resource_id: contact.contact_id, user_id: user.user_id });
      return reply.code(201).send(key);
    },
  );

  app.delete<{ Params: { contact_id: string; key_id: string } }>(
    "/api/v2/contacts/:contact_id/publickeys/:key_id",
    {
      schema: {
        operationId: "DeletePubKey",
        tags,
        summary: "Remove a public key; emits delete_key on keyAction",
        params: keyParams,
        response: { 204: { type: "null" } },
      },
    },
    async (request, reply) => {
      const user = userOf(request);
      const contact = await contactOf(user.user_id, request.params.contact_id);
      const keyId = request.params.key_id.toUpperCase();
      if (!(await store.keys.delete(user.user_id, contact.contact_id, keyId))) throw notFound(`key ${keyId}`);
      await emitter.publish("keyAction", "delete_key", { key_id: keyId, resource_id: contact.contact_id, user_id: user.user_id });
      return reply.code(204).send();
    },
  );
}
