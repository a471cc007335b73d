// SendEmailAdminToUser: a message from the platform's admin to a user's recovery address, written as a
// draft of the admin's and sent by the SMTP bridge (`deliver` on outboundSMTP).
import type { FastifyInstance } from "fastify";
import { newDraft } from "../../actors/messages/new-draft.ts";
import { type ApiContext, userOf } from "../api-context.ts";
import { deliver } from "../deliver.ts";
import { HttpError, notFound } from "../http-error.ts";
import { notifyBody } from "../schemas/admin.ts";
import { uuid } from "../schemas/common.ts";

export function adminRoutes(app: FastifyInstance, context: ApiContext): void {
  const { store } = context;
  app.post<{ Params: { user_id: string }; Body: { subject: string; body: string } }>(
    "/api/v2/admin/users/:user_id/notify",
    {
      schema: {
        operationId: "SendEmailAdminToUser",
        tags: ["admin"],
        summary: "Mail a user at their recovery address from the admin's local identity (admins only): deliver request on outboundSMTP",
        params: { type: "object", required: ["user_id"], properties: { user_id: uuid } },
        body: notifyBody,
        response: { 200: { $ref: "Message#" } },
      },
    },
    async (request) => {
      const admin = userOf(request);
      if (!admin.admin) throw new HttpError(403, "only an admin may notify users");
      const target = await store.users.get(request.params.user_id);
      if (target === null) throw notFound(`user ${request.params.user_id}`);
      if (target.recovery_email === null) throw new HttpError(422, `user ${target.name} has no recovery email address`);
      const [identity] = (await store.identities.list(admin.user_id, { type: "local" })).filter((candidate) => candidate.status === "active");
      if (identity === undefined) throw new HttpError(422, "the admin has no active local identity to send from");
      const draft = await store.messages.create(
        newDraft(identity, {
          subject: request.body.subject,
          body_plain: request.body.body,
          participants: [{ type: "To", address: target.recovery_email, label: target.name }],
        }),
      );
      await deliver(context, "outboundSMTP", draft, identity.identity_id);
      return (await store.messages.get(admin.user_id, draft.message_id)) ?? draft;
    },
  );
}
