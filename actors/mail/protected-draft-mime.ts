// The MIME a draft is sent as, protected as its privacy plan says (draft-privacy.ts): encrypted to every
// recipient and the sender (signed inside with the user's key when one is stored), signed in clear, or
// left clear. A draft that requires encryption and cannot have it is refused before anything is built.
// What this returns is what goes on the wire and is kept as the Sent copy.
import type { Identity, Message, MessagePgp } from "../store/model.ts";
import type { Store } from "../store/store.ts";
import { buildDraftMime, type DraftMime, type DraftMimeOptions } from "./draft-mime.ts";
import { type DraftPrivacy, planDraftPrivacy } from "./draft-privacy.ts";
import { encryptMime, signMime } from "./pgp-mime.ts";

/** The draft requires encryption, which cannot be done (a recipient has no usable key). */
export class EncryptionRequired extends Error {
  override readonly name = "EncryptionRequired";
}

export interface ProtectedDraftMime extends DraftMime {
  privacy: DraftPrivacy;
  /** What the sent message records (`pgp`, `is_encrypted`); null for clear mail. */
  pgp: MessagePgp | null;
}

export async function buildProtectedDraftMime(
  store: Store,
  draft: Message,
  from: Identity,
  parent: Message | null,
  options: DraftMimeOptions,
): Promise<ProtectedDraftMime> {
  const date = options.date ?? new Date();
  const { privacy, encryptionKeys, signingKey } = await planDraftPrivacy(store, draft, from, date);
  if (privacy.refused) throw new EncryptionRequired(`the draft requires encryption: ${privacy.reason}`);
  const signed = signingKey !== null && privacy.signing_key !== null;
  const mime = await buildDraftMime(draft, from, parent, { ...options, date, ...(privacy.mode === "signed" && { bodyEncoding: "quoted-printable" }) });
  const pgp = (encrypted: boolean): MessagePgp => ({ encrypted, signed, signer_key_id: signed ? (privacy.signing_key?.key_id ?? null) : null });
  if (privacy.mode === "encrypted") return { ...mime, raw: await encryptMime(mime.raw, encryptionKeys, signingKey, date), privacy, pgp: pgp(true) };
  if (privacy.mode === "signed" && signingKey !== null) return { ...mime, raw: await signMime(mime.raw, signingKey, date), privacy, pgp: pgp(false) };
  return { ...mime, privacy, pgp: null };
}
