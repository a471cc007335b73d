// Which service sends a draft, by the identity it is sent from (docs/decisions.md §2): a local identity
// through the SMTP bridge, a remote mail account through the IMAP bridge (which sends through the
// account's own SMTP server and files the copy in its Sent box), a Twitter account through the
// Twitter bridge.
import type { Identity } from "../store/model.ts";

export type DeliverySubject = "outboundSMTP" | "outboundIMAP" | "twitter_dm";

export function deliverySubject(identity: Pick<Identity, "type" | "protocol">): DeliverySubject | null {
  if (identity.protocol === "twitter") return "twitter_dm";
  if (identity.type === "local") return "outboundSMTP";
  if (identity.protocol === "email" || identity.protocol === "imap") return "outboundIMAP";
  if (identity.protocol === "smtp") return "outboundSMTP";
  return null;
}

/** The protocol of the messages an identity sends. */
export function messageProtocol(identity: Pick<Identity, "protocol">): string {
  return identity.protocol === "twitter" ? "twitter" : "email";
}
