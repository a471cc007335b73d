// JSON schema of a discussion (the thread a message belongs to) as the API lists it: its newest
// message ($ref to the shared Message schema) and its counts.

export const discussionSchema = {
  $id: "Discussion",
  type: "object",
  properties: {
    discussion_id: { type: "string" },
    date: { type: "string", description: "when its newest message was written or received" },
    last_message: { $ref: "Message#" },
    participants: { type: "array", items: { type: "object", additionalProperties: true }, description: "the newest message's participants" },
    total_count: { type: "integer" },
    unread_count: { type: "integer" },
  },
} as const;
