// The import of a few raw mails of one user in one request (`import_batch`), which this build's IMAP
// bridge sends its user's inbound actor instead of one `process_inbound` per mail: a request, an
// admission and a reply per batch instead of per mail, and the batch's imports run side by side. It is
// not in the contract: the node sends it to the actor (runtime/cluster/actor-requests.ts); from anywhere
// else it passes the same checks as any bus message (the payload below: ids by the contract's rule,
// a bounded list, no id twice). Each raw is imported exactly as `process_inbound` imports it, and the
// reply lists each raw's own reply, in the order asked.

import { ID_MAX_LENGTH, ID_RULE, orderSpec } from "../../contract/contract-table.ts";
import type { FieldSpec, PayloadSchema } from "../../runtime/payload-schema.ts";
import { isReply, type Reply } from "../../runtime/reply.ts";

/** The message type the inbound actor takes for a batch of mails. */
export const IMPORT_BATCH_EMAIL = "import_batch.email";

/** Raws one batch names at most. */
export const MAX_BATCH_RAWS = 32;
/**
 * Raw bytes one batch refers to at most, as the IMAP worker counts what it stored. The actor does not
 * trust a sender's count: it bounds the raws it parses at once instead (inbound-processor.ts).
 */
export const MAX_BATCH_RAW_BYTES = 8 * 1024 * 1024;

const ID = "[A-Za-z0-9_-]{1,64}";
const RAW_IDS: FieldSpec = {
  type: "string",
  required: true,
  description: `the raw messages to import, comma-separated (1-${MAX_BATCH_RAWS} ids, none twice)`,
  maxLength: MAX_BATCH_RAWS * (ID_MAX_LENGTH + 1) - 1,
  pattern: new RegExp(`^${ID}(,${ID}){0,${MAX_BATCH_RAWS - 1}}$`),
  patternDescription: `1-${MAX_BATCH_RAWS} ids of ${ID_RULE}, separated by commas`,
};

/** user_id and remote_id as the contract's `process_inbound` has them; the raws' ids as a list. */
export function importBatchPayload(): PayloadSchema {
  const single = orderSpec("inboundSMTP", "process_inbound")?.payload;
  const userId = single?.user_id;
  const remoteId = single?.remote_id;
  if (userId === undefined || remoteId === undefined) throw new Error("the contract's process_inbound lost user_id or remote_id");
  return { user_id: userId, remote_id: remoteId, raw_ids: RAW_IDS };
}

export interface ImportBatchOrder {
  user_id: string;
  remote_id: string;
  raw_ids: string[];
}

/** A batch as it travels: its raws' ids joined by commas (a type literal: a message payload is a JSON record). */
export type ImportBatchWire = {
  user_id: string;
  remote_id: string;
  raw_ids: string;
};

/** The wire payload of a batch (its ids joined). */
export function importBatchMessage(order: ImportBatchOrder): { type: typeof IMPORT_BATCH_EMAIL; payload: ImportBatchWire } {
  return { type: IMPORT_BATCH_EMAIL, payload: { user_id: order.user_id, remote_id: order.remote_id, raw_ids: order.raw_ids.join(",") } };
}

/** The raws a batch payload names, once it passed the schema; a string says why it is refused. */
export function batchRawIds(payload: ImportBatchWire): string[] | string {
  const ids = payload.raw_ids.split(",");
  if (new Set(ids).size !== ids.length) return "an import batch names a raw message twice";
  return ids;
}

/** Each raw's reply from a batch's reply, in the order asked; null when the reply is not one. */
export function batchResults(reply: unknown, asked: number): Reply[] | null {
  if (!isReply(reply) || reply.error) return null;
  const results = reply.results;
  if (!Array.isArray(results) || results.length !== asked || !results.every(isReply)) return null;
  return results;
}
