// Who am I: the user behind the bearer token.
import type { FastifyInstance } from "fastify";
import { type ApiContext, userOf } from "../api-context.ts";

export function userRoutes(app: FastifyInstance, _context: ApiContext): void {
  app.get("/api/v2/me", { schema: { operationId: "GetMe", tags: ["users"], summary: "The user behind the token" } }, async (request) => {
    const { user_id, name, recovery_email, contact_id, admin, date_insert } = userOf(request);
    return { user_id, name, recovery_email, contact_id, admin, date_insert };
  });
}
