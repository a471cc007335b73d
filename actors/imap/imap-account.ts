// An IMAP account as the worker's tasks see it: its identity (null once deleted) and a logged-in session.
import type { ImapFlow } from "imapflow";
import type { MailLogins } from "../mail/mail-login.ts";
import type { Identity } from "../store/model.ts";
import type { Store } from "../store/store.ts";
import { ImapLoginError, type ImapOptions, openImap } from "./imap-connection.ts";

export interface ImapAccount {
  identity(): Promise<Identity | null>;
  connect(identity: Identity, options?: Pick<ImapOptions, "autoIdleDelayMs" | "socketTimeoutMs" | "loginTimeoutMs" | "signal">): Promise<ImapFlow>;
}

export function imapAccount(store: Store, logins: MailLogins, userId: string, identityId: string, options: Pick<ImapOptions, "destinations">): ImapAccount {
  return {
    async identity() {
      const identity = await store.identities.get(userId, identityId);
      return identity === null || identity.status === "deleted" ? null : identity;
    },
    async connect(identity, connectOptions = {}) {
      return logins.use(
        identity,
        "in",
        (login) => openImap(identity, login, { ...options, ...connectOptions }),
        (err) => err instanceof ImapLoginError,
      );
    },
  };
}
