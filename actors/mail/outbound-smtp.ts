// `deliver` on outboundSMTP (docs/decisions.md §2, §4 smtp-bridge): send a draft from a local identity through
// the platform's relay, or from a remote mail identity through that account's own SMTP server with its
// credentials; keep the sent bytes as a raw message and flip the draft to a sent message.
//
// The relay is the operator's and trusted. An account's own server is the user's choice: it goes
// through the destination policy (never the relay, NATS, loopback or private addresses unless the
// operator admits them), the message goes to a checked address with the name kept for TLS, STARTTLS
// (or implicit TLS on 465) and a valid certificate are required unless the operator excepted that
// server, and the user must log in (a server that offers no AUTH is not used).
//
// Idempotent by message_id: a draft already sent is answered "already sent" without sending again, and
// a draft being sent by another request (marked `sending_since` by compare-and-swap) is refused until
// that send ends or its mark is stale. Every outcome is a reply; nothing is thrown.

import type { Logger } from "pino";
import type { OrderPayload } from "../../contract/contract-table.ts";
import { failure, isReply, ok, type Reply } from "../../runtime/reply.ts";
import { claimDraft, draftToSend, markAnswered, releaseClaim } from "../messages/send-claim.ts";
import { connectInTurn } from "../network/connect-in-turn.ts";
import { type CheckedDestination, DestinationNotFound, type DestinationPolicy, DestinationRefused } from "../network/destination-policy.ts";
import { formatHostPort, parseHostPort } from "../network/host-port.ts";
import type { AccessTokens } from "../oauth2/access-tokens.ts";
import type { Identity, MessagePgp } from "../store/model.ts";
import type { Store } from "../store/store.ts";
import { draftRecipients } from "./draft-mime.ts";
import { isLoginFailure, type MailLogin, MailLogins } from "./mail-login.ts";
import { buildProtectedDraftMime } from "./protected-draft-mime.ts";
import { DEFAULT_SMTP_TIMEOUTS, describeTarget, SmtpSendError, type SmtpTarget, type SmtpTimeouts, sendRaw } from "./smtp-transport.ts";

/** `deliver` on outboundSMTP: the draft (`message_id`) of `user_id`, sent from the identity `remote_id`. */
export type DeliverOrder = OrderPayload<"outboundSMTP", "deliver">;

export interface OutboundSmtpDeps {
  store: Store;
  /** Where mail from local identities goes. */
  relay: SmtpTarget;
  /** Which servers of remote accounts may be reached, and how. */
  destinations: DestinationPolicy;
  /** Refreshes the access tokens of OAuth 2.0 accounts (the node's); null or absent: none can send. */
  accessTokens?: AccessTokens | null;
  /** The platform's mail host (Message-IDs, EHLO). */
  host: string;
  logger: Logger;
  timeouts?: SmtpTimeouts;
  /** Clock, for tests. */
  now?: () => Date;
}

export async function deliverDraft(deps: OutboundSmtpDeps, order: DeliverOrder): Promise<Reply> {
  try {
    return await deliver(deps, order);
  } catch (err) {
    deps.logger.error({ err, message_id: order.message_id, user_id: order.user_id }, "deliver failed unexpectedly");
    return failure(`failed to send message ${order.message_id}: ${(err as Error).message ?? String(err)}`);
  }
}

async function deliver(deps: OutboundSmtpDeps, order: DeliverOrder): Promise<Reply> {
  const { store } = deps;
  const now = deps.now ?? (() => new Date());
  const id = order.message_id;
  const log = deps.logger.child({ message_id: id, user_id: order.user_id, identity_id: order.remote_id });

  const draft = await draftToSend(store, order);
  if (isReply(draft)) return draft;
  const identity = await store.identities.get(order.user_id, order.remote_id);
  if (identity === null || identity.status === "deleted") return failure(`identity ${order.remote_id} of user ${order.user_id} not found`);
  if (draftRecipients(draft).length === 0) return failure(`draft ${id} has no recipient`);

  const route = await routeFor(deps, identity);
  if ("error" in route) return failure(`cannot send message ${id}: ${route.error}`);

  // Claim the draft: one send at a time.
  const claimedAt = now();
  const claim = await claimDraft(store, draft, claimedAt);
  if (claim.outcome === "gone") return failure(`draft ${id} not found`);
  if (claim.outcome === "sent") return ok(`message ${id} was already sent`, { message_id: id });
  if (claim.outcome === "busy") return failure(`draft ${id} is already being sent (since ${claim.since}); try again later`);
  const claimed = claim.draft;

  let sent: {
    raw: Buffer;
    messageId: string;
    inReplyTo: string;
    references: string[];
    date: Date;
    pgp: MessagePgp | null;
    rejected: { address: string; response: string }[];
  };
  try {
    const parent = claimed.parent_id ? await store.messages.get(order.user_id, claimed.parent_id) : null;
    if (claimed.parent_id && parent === null) log.warn({ parent_id: claimed.parent_id }, "the parent of the draft is gone: sent without threading headers");
    // Encrypted or signed as the draft's privacy says (a draft requiring encryption may be refused here).
    const mime = await buildProtectedDraftMime(store, claimed, identity, parent, {
      host: deps.host,
      date: now(),
      openAttachment: (attachment) => (attachment.content_raw_id === undefined ? Promise.resolve(null) : store.raws.readable(attachment.content_raw_id)),
    });
    const server = describeTarget(route.targets[0]);
    log.info({ via: route.via, server, recipients: mime.envelope.to.length, size: mime.raw.length, privacy: mime.privacy.mode }, "sending draft");
    const send = (auth: MailLogin | null) =>
      connectInTurn(route.targets, (target) =>
        sendRaw({ ...target, ...(auth !== null && { auth }), name: deps.host }, mime.envelope, mime.raw, deps.timeouts ?? DEFAULT_SMTP_TIMEOUTS),
      );
    // An access token the server refuses is refreshed and the message sent once more.
    const result =
      route.login === null
        ? await send(null)
        : await route.logins.use(identity, "out", send, (err) => err instanceof SmtpSendError && err.authRefused, route.login);
    sent = { ...mime, rejected: result.rejected };
    log.info({ via: route.via, server, response: result.response, accepted: result.accepted.length, rejected: result.rejected.length }, "draft sent");
  } catch (err) {
    await releaseClaim(store, claimed, claimedAt, log);
    const reason = err instanceof SmtpSendError ? err.message : `${(err as Error).message ?? String(err)}`;
    log.warn({ via: route.via, reason }, "sending the draft failed");
    return failure(`failed to send message ${id}: ${reason}`);
  }

  // Sent: from here on, never release the claim for a resend; record what went out.
  let rawId: string | null = null;
  let storeError: string | null = null;
  try {
    const raw = await store.raws.put(order.user_id, sent.raw);
    rawId = raw.raw_msg_id;
    await store.raws.markDelivered(rawId);
  } catch (err) {
    storeError = `storing the sent copy failed: ${(err as Error).message}`;
  }
  try {
    const flipped = await store.messages.update(order.user_id, id, (current) => ({
      ...current,
      is_draft: false,
      is_unread: false,
      raw_msg_id: rawId,
      date: sent.date.toISOString(),
      external_references: { message_id: sent.messageId, parent_id: sent.inReplyTo, ancestors_ids: sent.references },
      sending_since: null,
      ...(sent.pgp !== null && { is_encrypted: sent.pgp.encrypted, pgp: sent.pgp }),
    }));
    if (flipped === null) log.warn("the draft was deleted while it was being sent");
  } catch (err) {
    storeError = [storeError, `marking it sent failed: ${(err as Error).message}`].filter(Boolean).join("; ");
  }
  if (claimed.parent_id) await markAnswered(store, order.user_id, claimed.parent_id, log);
  if (storeError !== null) {
    log.error({ raw_msg_id: rawId, reason: storeError }, "the draft was sent but recording it failed");
    return failure(`message ${id} was sent, but ${storeError}`, { message_id: id });
  }
  const extra: Record<string, unknown> = { message_id: id };
  if (sent.rejected.length > 0) extra.rejected = sent.rejected;
  const refused = sent.rejected.length > 0 ? ` (refused by the server for ${sent.rejected.map((r) => `${r.address}: ${r.response}`).join(", ")})` : "";
  return ok(`message ${id} has been sent${refused}`, extra);
}

/** Where a draft goes: the relay, or the account's server at each of its checked addresses (tried in turn) with the account's login. */
type Route =
  | { via: "relay"; targets: [SmtpTarget, ...SmtpTarget[]]; login: null }
  | { via: "identity"; targets: [SmtpTarget, ...SmtpTarget[]]; login: MailLogin; logins: MailLogins }
  | { error: string };

async function routeFor(deps: OutboundSmtpDeps, identity: Identity): Promise<Route> {
  if (identity.protocol === "twitter") return { error: `identity ${identity.identity_id} is a twitter identity, not a mail one` };
  if (identity.type === "local") return { via: "relay", targets: [deps.relay], login: null };
  const server = parseHostPort(identity.infos.outserver);
  if (server === null) return { error: `remote identity ${identity.identity_id} has no valid outgoing server (infos.outserver "host:port")` };
  const logins = new MailLogins(deps.store, deps.accessTokens ?? null);
  let login: MailLogin;
  try {
    login = await logins.login(identity, "out");
  } catch (err) {
    if (isLoginFailure(err)) return { error: err.message };
    throw err;
  }
  let destination: CheckedDestination;
  try {
    destination = await deps.destinations.check(server.host, server.port, "SMTP server");
  } catch (err) {
    if (err instanceof DestinationRefused || err instanceof DestinationNotFound) return { error: err.message };
    throw err;
  }
  const secure = server.port === 465;
  const target = (address: string): SmtpTarget => ({
    host: address,
    port: server.port,
    label: formatHostPort(server),
    secure,
    requireAuth: true,
    // The password or token crosses the network only encrypted, unless the operator excepted this server.
    requireTLS: !secure && !destination.exceptions.cleartext,
    tls: { ...destination.tls, ...(destination.servername !== undefined && { servername: destination.servername }) },
  });
  const [first, ...rest] = destination.addresses;
  return { via: "identity", targets: [target(first), ...rest.map(target)], login, logins };
}
