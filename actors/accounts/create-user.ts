// A new user: their own contact card, the user, and optionally a local identity (their address on this
// platform, which they send from and receive at).
import { randomUUID } from "node:crypto";
import { type ApiToken, type Identity, SCHEMA_VERSION, type User } from "../store/model.ts";
import type { Store } from "../store/store.ts";

export interface NewAccount {
  name: string;
  admin?: boolean;
  recovery_email?: string | null;
  /** The user's local address. */
  email?: string | null;
  display_name?: string;
  /** The first token's lifetime in milliseconds (null: never expires; absent: the default lifetime). */
  token_lifetime_ms?: number | null;
}

export interface NewAccountCreated {
  user: User;
  /** The first bearer token, to show once. */
  token: string;
  /** Its public description (id, expiry). */
  token_info: ApiToken;
  identity: Identity | null;
}

export async function createUser(store: Store, account: NewAccount): Promise<NewAccountCreated> {
  const contactId = randomUUID();
  const user = await store.users.create({
    name: account.name,
    admin: account.admin ?? false,
    recovery_email: account.recovery_email ?? null,
    contact_id: contactId,
  });
  const { token, secret } = await store.tokens.create(user.user_id, { lifetimeMs: account.token_lifetime_ms });
  const now = new Date().toISOString();
  const address = account.email?.trim().toLowerCase() ?? null;
  await store.contacts.create({
    schema: SCHEMA_VERSION,
    user_id: user.user_id,
    contact_id: contactId,
    title: account.display_name ?? account.name,
    given_name: "",
    family_name: "",
    emails: address === null ? [] : [{ address, label: "", type: "work", is_primary: true }],
    identities: [],
    derived: null,
    date_insert: now,
    date_update: now,
  });
  const identity =
    address === null
      ? null
      : await store.identities.create({
          user_id: user.user_id,
          type: "local",
          protocol: "email",
          identifier: address,
          display_name: account.display_name ?? account.name,
        });
  return { user, token: secret, token_info: token, identity };
}
