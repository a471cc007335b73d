// Contacts (CreateContact, UpdateContact, launchKeyDiscovery). Every change is followed by
// `contact_update` on contactAction, and a change of addresses by `discover_key` on keyAction.
import { randomUUID } from "node:crypto";
import type { FastifyInstance } from "fastify";
import { type Contact, type ContactEmail, SCHEMA_VERSION, type SocialIdentity } from "../../actors/store/model.ts";
import { type ApiContext, userOf } from "../api-context.ts";
import { notFound } from "../http-error.ts";
import { page, pageQuery, uuid } from "../schemas/common.ts";
import { createContactBody, patchContactBody } from "../schemas/contacts.ts";
import { pageOrBadCursor } from "./page-cursor.ts";

interface ContactBody {
  title?: string;
  given_name?: string;
  family_name?: string;
  emails?: Partial<ContactEmail>[];
  identities?: SocialIdentity[];
}

export const contactParams = { type: "object", required: ["contact_id"], properties: { contact_id: uuid } } as const;
const tags = ["contacts"];

function normaliseEmails(emails: Partial<ContactEmail>[]): ContactEmail[] {
  return emails.map((email, index) => ({
    address: String(email.address).trim().toLowerCase(),
    label: email.label ?? "",
    type: email.type ?? "other",
    is_primary: email.is_primary ?? index === 0,
  }));
}

function titleOf(contact: Pick<Contact, "title" | "given_name" | "family_name" | "emails" | "identities">): string {
  if (contact.title.trim() !== "") return contact.title;
  const name = `${contact.given_name} ${contact.family_name}`.trim();
  return name || contact.emails[0]?.address || contact.identities[0]?.name || "";
}

/** The addresses that key discovery looks at: a change in them is worth a new discovery. */
function addressSet(contact: Contact): string {
  return [...contact.emails.map((email) => email.address), ...contact.identities.map((identity) => `${identity.type}:${identity.name}`)].sort().join("\n");
}

export function contactRoutes(app: FastifyInstance, { store, emitter }: ApiContext): void {
  app.get<{ Querystring: { offset: number; limit: number; after?: string } }>(
    "/api/v2/contacts",
    { schema: { operationId: "ListContacts", tags, summary: "The user's contacts, paged", querystring: pageQuery, response: { 200: page("Contact") } } },
    async (request) => pageOrBadCursor(() => store.contacts.list(userOf(request).user_id, request.query)),
  );

  app.post<{ Body: ContactBody }>(
    "/api/v2/contacts",
    {
      schema: {
        operationId: "CreateContact",
        tags,
        summary: "Create a contact; emits contact_update on contactAction",
        body: createContactBody,
        response: { 201: { $ref: "Contact#" } },
      },
    },
    async (request, reply) => {
      const user = userOf(request);
      const now = new Date().toISOString();
      const fields = {
        title: request.body.title ?? "",
        given_name: request.body.given_name ?? "",
        family_name: request.body.family_name ?? "",
        emails: normaliseEmails(request.body.emails ?? []),
        identities: request.body.identities ?? [],
      };
      const contact = await store.contacts.create({
        schema: SCHEMA_VERSION,
        user_id: user.user_id,
        contact_id: randomUUID(),
        ...fields,
        title: titleOf(fields),
        derived: null,
        date_insert: now,
        date_update: now,
      });
      await emitter.publish("contactAction", "contact_update", { contact_id: contact.contact_id, user_id: user.user_id });
      return reply.code(201).send(contact);
    },
  );

  app.get<{ Params: { contact_id: string } }>(
    "/api/v2/contacts/:contact_id",
    {
      schema: {
        operationId: "GetContact",
        tags,
        summary: "One contact, with its derived data",
        params: contactParams,
        response: { 200: { $ref: "Contact#" } },
      },
    },
    async (request) => {
      const contact = await store.contacts.get(userOf(request).user_id, request.params.contact_id);
      if (contact === null) throw notFound(`contact ${request.params.contact_id}`);
      return contact;
    },
  );

  app.patch<{ Params: { contact_id: string }; Body: ContactBody }>(
    "/api/v2/contacts/:contact_id",
    {
      schema: {
        operationId: "UpdateContact",
        tags,
        summary: "Change a contact; emits contact_update, and discover_key on keyAction when its addresses change",
        params: contactParams,
        body: patchContactBody,
        response: { 200: { $ref: "Contact#" } },
      },
    },
    async (request) => {
      const user = userOf(request);
      const body = request.body;
      let addressesChanged = false;
      const updated = await store.contacts.update(user.user_id, request.params.contact_id, (current) => {
        const next: Contact = {
          ...current,
          ...(body.title !== undefined && { title: body.title }),
          ...(body.given_name !== undefined && { given_name: body.given_name }),
          ...(body.family_name !== undefined && { family_name: body.family_name }),
          ...(body.emails !== undefined && { emails: normaliseEmails(body.emails) }),
          ...(body.identities !== undefined && { identities: body.identities }),
          date_update: new Date().toISOString(),
        };
        // A title the user chose stays until they change it; one made from the names follows them.
        const chosen = current.title !== titleOf({ ...current, title: "" });
        next.title = body.title === undefined && chosen ? current.title : titleOf({ ...next, title: body.title ?? "" });
        addressesChanged = addressSet(next) !== addressSet(current);
        return next;
      });
      if (updated === null) throw notFound(`contact ${request.params.contact_id}`);
      await emitter.publish("contactAction", "contact_update", { contact_id: updated.contact_id, user_id: user.user_id });
      if (addressesChanged) await emitter.publish("keyAction", "discover_key", { contact_id: updated.contact_id, user_id: user.user_id });
      return updated;
    },
  );

  app.post<{ Params: { contact_id: string } }>(
    "/api/v2/contacts/:contact_id/publickeys/discover",
    {
      schema: {
        operationId: "launchKeyDiscovery",
        tags,
        summary: "Look for the contact's public keys; emits discover_key on keyAction",
        params: contactParams,
        response: { 202: { type: "object", properties: { message: { type: "string" } } } },
      },
    },
    async (request, reply) => {
      const user = userOf(request);
      const contact = await store.contacts.get(user.user_id, request.params.contact_id);
      if (contact === null) throw notFound(`contact ${request.params.contact_id}`);
      await emitter.publish("keyAction", "discover_key", { contact_id: contact.contact_id, user_id: user.user_id });
      return reply.code(202).send({ message: "key discovery requested" });
    },
  );
}
