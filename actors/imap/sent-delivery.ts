// `deliver` on outboundIMAP for one draft (docs/decisions.md §2): the SMTP bridge sends it through the
// account's own server, then the sent copy is APPENDed to the account's Sent mailbox. Every outcome is
// a reply; once the mail is sent, a failure to file the copy is still a success that says so.

import { replyWithinMs } from "../../contract/contract-table.ts";
import { requestOrder } from "../../contract/emit-order.ts";
import type { ActorPorts } from "../../runtime/actor-family.ts";
import { failure, ok, type Reply } from "../../runtime/reply.ts";
import type { Store } from "../store/store.ts";
import type { ImapAccount } from "./imap-account.ts";
import { closeImap } from "./imap-connection.ts";
import { appendSentCopy } from "./sent-copy.ts";

/** How long the SMTP bridge may take to send: less than this deliver's own requester waits. */
const SMTP_DELIVER_TIMEOUT_MS = replyWithinMs("outboundIMAP", "deliver") - 5_000;

export interface SentDeliveryOrder {
  identity_id: string;
  user_id: string;
  message_id: string;
}

export async function deliverWithSentCopy(store: Store, ports: ActorPorts, account: ImapAccount, order: SentDeliveryOrder): Promise<Reply> {
  const { message_id } = order;
  try {
    const sent = await requestOrder(
      ports,
      "outboundSMTP",
      "deliver",
      { message_id, remote_id: order.identity_id, user_id: order.user_id },
      SMTP_DELIVER_TIMEOUT_MS,
    );
    if (sent.error) return failure(sent.message);
    const message = sent.message;
    // Sent: from here on an error must not make the sender think the mail did not go out.
    try {
      const identity = await account.identity();
      const draft = await store.messages.get(order.user_id, message_id);
      const raw = draft?.raw_msg_id ? await store.raws.read(draft.raw_msg_id) : null;
      if (identity === null || draft === null || raw === null) throw new Error("the sent message or its raw copy is missing");
      const client = await account.connect(identity);
      try {
        const mailbox = await appendSentCopy(client, Buffer.from(raw), new Date(draft.date));
        return ok(message, { message_id, sent_copy: mailbox });
      } finally {
        await closeImap(client);
      }
    } catch (err) {
      ports.logger.warn({ key: order.identity_id, message_id, err: (err as Error).message }, "sent, but the copy could not be filed in Sent");
      return ok(`${message} (the copy could not be filed in the Sent mailbox: ${(err as Error).message})`, { message_id, sent_copy: null });
    }
  } catch (err) {
    return failure(`could not send message ${message_id}: ${(err as Error).message}`);
  }
}
