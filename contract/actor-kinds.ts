// The kinds of actor the contract's orders are handled by: part of each actor's subject
// (`caliopen.actor.<kind>.<key>`) and of its snapshot's key, so they never change once deployed.
export const ACTOR_KINDS = {
  /** The identities worker's poller of one remote identity, keyed by identity_id. */
  poller: "poller",
  /** The IMAP bridge's worker of one account, keyed by remote_id. */
  imap: "imap",
  /** The Twitter bridge's worker of one account, keyed by remote_id. */
  twitter: "twitter",
  /** One user's inbound processor (mail and DMs), keyed by user_id. */
  inbound: "inbound",
  /** One contact's ContactAction and KeyAction orders, keyed by contact_id. */
  contact: "contact",
} as const;

export type ActorKind = (typeof ACTOR_KINDS)[keyof typeof ACTOR_KINDS];
