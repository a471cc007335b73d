// JSON schema of what an admin sends to a user (SendEmailAdminToUser): a mail to their recovery
// address, not one of the user's notifications.

export const notifyBody = {
  type: "object",
  additionalProperties: false,
  required: ["subject", "body"],
  properties: { subject: { type: "string", minLength: 1, maxLength: 2_000 }, body: { type: "string", minLength: 1, maxLength: 1_000_000 } },
} as const;
