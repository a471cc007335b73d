// A store on a private nats-server, and builders for the objects the store tests write.
import { randomBytes, randomUUID } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import { type Contact, type Message, type PublicKey, SCHEMA_VERSION } from "../../../actors/store/model.ts";
import { openStore, type Store } from "../../../actors/store/store.ts";
import { SecretBox } from "../../../runtime/secret-box.ts";
import { Subjects } from "../../../runtime/subjects.ts";
import { startTestNats, type TestNats } from "../../helpers/nats-server.ts";

export interface StoreFixture {
  nats: TestNats;
  nc: NatsConnection;
  secrets: SecretBox;
  store: Store;
  /** Another store on its own connection over the same buckets (another node, for races). */
  openAnother(): Promise<Store>;
}

export async function startStore(): Promise<StoreFixture> {
  const nats = await startTestNats();
  const nc = await nats.connect();
  const secrets = new SecretBox(randomBytes(32));
  const store = await openStore({ nc, subjects: new Subjects(""), secrets });
  return {
    nats,
    nc,
    secrets,
    store,
    openAnother: async () => openStore({ nc: await nats.connect(), subjects: new Subjects(""), secrets }),
  };
}

export function newMessage(userId: string, fields: Partial<Message> = {}): Message {
  const id = fields.message_id ?? randomUUID();
  return {
    schema: SCHEMA_VERSION,
    user_id: userId,
    message_id: id,
    discussion_id: randomUUID(),
    raw_msg_id: null,
    subject: `subject of ${id}`,
    body_plain: "hello",
    body_html: "",
    date: new Date().toISOString(),
    date_insert: new Date().toISOString(),
    is_draft: false,
    is_unread: true,
    is_received: true,
    is_answered: false,
    participants: [],
    external_references: { message_id: `<${id}@example.com>`, parent_id: "", ancestors_ids: [] },
    attachments: [],
    tags: [],
    protocol: "email",
    user_identities: [],
    parent_id: null,
    ...fields,
  };
}

export function newContact(userId: string, emails: string[], fields: Partial<Contact> = {}): Contact {
  const now = new Date().toISOString();
  return {
    schema: SCHEMA_VERSION,
    user_id: userId,
    contact_id: randomUUID(),
    title: emails[0] ?? "nobody",
    given_name: "",
    family_name: "",
    emails: emails.map((address, i) => ({ address, label: "", type: "home", is_primary: i === 0 })),
    identities: [],
    derived: null,
    date_insert: now,
    date_update: now,
    ...fields,
  };
}

export function newPublicKey(userId: string, contactId: string, fields: Partial<PublicKey> = {}): PublicKey {
  const fingerprint = fields.fingerprint ?? randomBytes(20).toString("hex").toUpperCase();
  return {
    schema: SCHEMA_VERSION,
    user_id: userId,
    resource_id: contactId,
    key_id: fingerprint.slice(-16),
    fingerprint,
    armored: "-----BEGIN PGP PUBLIC KEY BLOCK-----\n...\n-----END PGP PUBLIC KEY BLOCK-----",
    expire_date: null,
    label: "",
    size: 256,
    algorithm: "ed25519",
    emails: [],
    source: "user",
    date_insert: new Date().toISOString(),
    ...fields,
  };
}
