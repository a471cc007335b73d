// ContactAction `contact_update` (docs/decisions.md §4): recompute what Caliopen derives about a contact from
// the user's stored messages and the contact's public keys, and save it on the contact.
//
// - messages_by_address: for each of the contact's addresses (emails and social identities' names,
//   lower-cased), how many of the user's messages have it as a participant (From, To, Cc, Bcc,
//   Reply-To or Sender). Drafts are not counted: nothing was exchanged yet. A message naming two of the
//   contact's addresses counts once for each.
// - best_key_size: the largest `size` among the contact's keys that have not expired (0 if none).
// - privacy_score, 0–100, a simple sum (the original's "PI" counted similar things differently):
//     key      up to 50: 50 × min(1, strength / 128) for the contact's strongest usable key, where
//              strength is the key's security level in bits (ECC: half the curve size, so ed25519 =
//              128; RSA/DSA/ElGamal: NIST SP 800-57's equivalences, 1024 → 80, 2048 → 112,
//              3072 → 128). No usable key: 0.
//     encrypted up to 40: 40 × the share of the messages exchanged with the contact that were
//              OpenPGP-encrypted (PGP/MIME or inline armor; see isEncrypted). No message: 0.
//     history  10 when at least 10 messages were exchanged (the original's "context" bonus).
//   Rounded to an integer.
import type { Contact, ContactDerived, Message, PublicKey } from "../store/model.ts";
import { MAX_PAGE_LIMIT } from "../store/paging.ts";
import type { Store } from "../store/store.ts";

export interface ContactUpdateOrder {
  contact_id: string;
  user_id: string;
}

export interface ContactUpdateOptions {
  now?: () => Date;
}

/** Recomputes and saves the contact's `derived`; throws when the contact does not exist. */
export async function updateContactDerived(store: Store, order: ContactUpdateOrder, options: ContactUpdateOptions = {}): Promise<ContactDerived> {
  const now = options.now ?? (() => new Date());
  const contact = await store.contacts.get(order.user_id, order.contact_id);
  if (contact === null) throw new Error(`contact_update: user ${order.user_id} has no contact ${order.contact_id}`);
  const [messages, keys] = await Promise.all([allMessages(store, order.user_id), store.keys.list(order.user_id, order.contact_id)]);
  const derived = computeDerived(contact, messages, keys, now());
  const saved = await store.contacts.update(order.user_id, order.contact_id, (current) => ({ ...current, derived }));
  if (saved === null) throw new Error(`contact_update: contact ${order.contact_id} of user ${order.user_id} was deleted while it was recomputed`);
  return derived;
}

/** Every message of the user, page after page, each starting where the last ended (a cursor costs no more deep in). */
async function allMessages(store: Store, userId: string): Promise<Message[]> {
  const seen = new Map<string, Message>();
  let after: string | undefined;
  do {
    const page = await store.messages.list(userId, { limit: MAX_PAGE_LIMIT, ...(after !== undefined && { after }) });
    for (const message of page.items) seen.set(message.message_id, message);
    after = page.next ?? undefined;
  } while (after !== undefined);
  return [...seen.values()];
}

export function computeDerived(contact: Contact, messages: Message[], keys: PublicKey[], now: Date): ContactDerived {
  const addresses = [...new Set([...contact.emails.map((email) => email.address), ...contact.identities.map((identity) => identity.name)].map(normalise))];
  const messagesByAddress: Record<string, number> = Object.fromEntries(addresses.map((address) => [address, 0]));
  let exchanged = 0;
  let encrypted = 0;
  for (const message of messages) {
    if (message.is_draft) continue;
    const named = new Set(message.participants.map((participant) => normalise(participant.address)));
    const hits = addresses.filter((address) => named.has(address));
    for (const address of hits) messagesByAddress[address] = (messagesByAddress[address] ?? 0) + 1;
    if (hits.length > 0) {
      exchanged++;
      if (isEncrypted(message)) encrypted++;
    }
  }
  const usable = keys.filter((key) => key.expire_date === null || Date.parse(key.expire_date) > now.getTime());
  const bestKeySize = usable.reduce((best, key) => Math.max(best, key.size), 0);
  const strength = usable.reduce((best, key) => Math.max(best, securityBits(key)), 0);
  const keyPart = 50 * Math.min(1, strength / 128);
  const encryptedPart = exchanged === 0 ? 0 : 40 * (encrypted / exchanged);
  const historyPart = exchanged >= 10 ? 10 : 0;
  return {
    messages_by_address: messagesByAddress,
    best_key_size: bestKeySize,
    privacy_score: Math.round(Math.min(100, keyPart + encryptedPart + historyPart)),
    computed_at: now.toISOString(),
  };
}

/**
 * Whether a stored message was OpenPGP-encrypted: `is_encrypted`, set on PGP/MIME mail received and on
 * mail sent encrypted (whose stored bodies are the user's clear text). Otherwise, from its content:
 * inbound processing keeps a PGP/MIME message's
 * armored payload as its plain body (and its `application/octet-stream` part as an attachment), and an
 * inline-PGP message has the armor in its body too. A `application/pgp-encrypted` or
 * `multipart/encrypted` attachment also counts (messages stored by other paths).
 */
export function isEncrypted(message: Message): boolean {
  if (message.is_encrypted === true) return true;
  if (message.body_plain.trimStart().startsWith("-----BEGIN PGP MESSAGE-----")) return true;
  return message.attachments.some((attachment) => {
    const type = attachment.content_type.toLowerCase();
    return type === "application/pgp-encrypted" || type === "multipart/encrypted";
  });
}

/** A key's security level in bits, to compare RSA and ECC keys on one scale. */
export function securityBits(key: Pick<PublicKey, "algorithm" | "size">): number {
  const algorithm = key.algorithm.toLowerCase();
  const ecc = /ecc|ecdsa|ecdh|eddsa|ed25519|ed448|x25519|x448|curve|nist|brainpool|secp/.test(algorithm);
  if (ecc) return Math.floor(key.size / 2);
  // RSA, DSA, ElGamal (NIST SP 800-57 Part 1, table 2), interpolated between its points.
  const points: [number, number][] = [
    [0, 0],
    [1024, 80],
    [2048, 112],
    [3072, 128],
    [7680, 192],
    [15360, 256],
  ];
  for (let i = 1; i < points.length; i++) {
    const [x1, y1] = points[i] as [number, number];
    const [x0, y0] = points[i - 1] as [number, number];
    if (key.size <= x1) return y0 + ((y1 - y0) * (key.size - x0)) / (x1 - x0);
  }
  return 256;
}

const normalise = (address: string) => address.trim().toLowerCase();
