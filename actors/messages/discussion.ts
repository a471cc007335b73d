// A discussion groups the messages exchanged by the same set of participants (docs/decisions.md §4): its id
// is the sha256 of the sorted `protocol:address` list of the participants, or of the List-ID when the
// message came through a mailing list.
import { createHash } from "node:crypto";

export interface DiscussionParticipant {
  protocol: string;
  address: string;
}

export function discussionId(participants: readonly DiscussionParticipant[], listId?: string | null): string {
  const basis =
    listId !== undefined && listId !== null && listId.trim() !== ""
      ? `list:${listId.trim().toLowerCase()}`
      : [...new Set(participants.map((p) => `${p.protocol}:${p.address.trim().toLowerCase()}`))].sort().join("\n");
  return createHash("sha256").update(basis, "utf8").digest("hex");
}
