// The store every Caliopen service uses: users, API tokens, identities, raw messages, messages, contacts
// and public keys in JetStream KV and object store. Handlers go through these few methods and never name
// a bucket.
import { type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { Objm } from "@nats-io/obj";
import type { NatsConnection } from "@nats-io/transport-node";
import { KvDocuments } from "../../runtime/kv-documents.ts";
import type { SecretBox } from "../../runtime/secret-box.ts";
import type { Subjects } from "../../runtime/subjects.ts";
import { ContactStore } from "./contacts.ts";
import { DiscussionStore, type DiscussionSummary } from "./discussions.ts";
import { type HoldersDoc, IdentifierHolders } from "./identifier-holders.ts";
import { IdentityStore, type StoredIdentity } from "./identities.ts";
import { INLINE_RAW_HEADER_ALLOWANCE, INLINE_RAW_MAX_BYTES, InlineRaws } from "./inline-raws.ts";
import { Listings } from "./listings.ts";
import { Lookups } from "./lookups.ts";
import { MessageStore } from "./messages.ts";
import type { ApiToken, Contact, Message, PublicKey, RawMessage, User } from "./model.ts";
import { OAuth2Authorizations } from "./oauth2-authorizations.ts";
import { PrivateKeyStore } from "./private-keys.ts";
import { PublicKeyStore } from "./public-keys.ts";
import { RawMessageStore } from "./raw-messages.ts";
import { type KeyCheckDocument, SecretKeyCheck } from "./secret-key-check.ts";
import { ServerCopies, type ServerCopy } from "./server-copies.ts";
import type { ListingDoc } from "./sorted-index.ts";
import { TokenStore } from "./tokens.ts";
import { UserStore } from "./users.ts";

export interface Store {
  users: UserStore;
  tokens: TokenStore;
  identities: IdentityStore;
  raws: RawMessageStore;
  messages: MessageStore;
  contacts: ContactStore;
  keys: PublicKeyStore;
  /** The users' own private keys, sealed (signing, and their copy of encrypted mail). */
  privateKeys: PrivateKeyStore;
  /** The deployment's record of which secret key seals credentials. */
  keyCheck: SecretKeyCheck;
  /** Where the messages are on the users' mail servers (IMAP folders and UIDs). */
  serverCopies: ServerCopies;
  /** Users' OAuth 2.0 consents in progress (connecting a mail account). */
  oauth2Authorizations: OAuth2Authorizations;
}

export interface StoreOptions {
  nc: NatsConnection;
  subjects: Subjects;
  /** Seals identity credentials at rest (null: this process never handles credentials). */
  secrets: SecretBox | null;
  replicas?: number;
}

/** Opens (creating when missing) every bucket of the store. */
export async function openStore(options: StoreOptions): Promise<Store> {
  const replicas = options.replicas ?? 1;
  const bucket = (name: string) => options.subjects.resource(`caliopen_${name}`);
  const lookups = await Lookups.open(options.nc, bucket("lookups"), replicas);
  const [users, tokens, identities, raws, messages, contacts, keys, deployment, listingDocs, holderDocs, copyDocs, discussionDocs] = await Promise.all([
    KvDocuments.open<User>(options.nc, bucket("users"), replicas),
    KvDocuments.open<ApiToken>(options.nc, bucket("tokens"), replicas),
    KvDocuments.open<StoredIdentity>(options.nc, bucket("identities"), replicas),
    KvDocuments.open<RawMessage>(options.nc, bucket("raw_messages"), replicas),
    KvDocuments.open<Message>(options.nc, bucket("messages"), replicas),
    KvDocuments.open<Contact>(options.nc, bucket("contacts"), replicas),
    KvDocuments.open<PublicKey>(options.nc, bucket("public_keys"), replicas),
    KvDocuments.open<KeyCheckDocument>(options.nc, bucket("deployment"), replicas),
    KvDocuments.open<ListingDoc>(options.nc, bucket("listings"), replicas),
    // Beside the per-user claims of identifiers, under their own prefix.
    KvDocuments.open<HoldersDoc>(options.nc, bucket("lookups"), replicas),
    KvDocuments.open<ServerCopy>(options.nc, bucket("lookups"), replicas),
    KvDocuments.open<DiscussionSummary>(options.nc, bucket("discussions"), replicas),
  ]);
  const listings = new Listings(listingDocs);
  const oauth2Authorizations = await OAuth2Authorizations.open(options.nc, bucket("oauth2_authorizations"), replicas, options.secrets);
  const privateKeys = new PrivateKeyStore(await KvDocuments.open(options.nc, bucket("private_keys"), replicas), options.secrets);
  const objects = await new Objm(options.nc).create(bucket("raw"), { replicas });
  let jsm: Promise<JetStreamManager> | null = null;
  const sharedJsm = () =>
    (jsm ??= jetstreamManager(options.nc).catch((err: unknown) => {
      jsm = null;
      throw err;
    }));
  const chunks = { bucket: bucket("raw"), jsm: sharedJsm };
  // Half the server's max_payload at most (see INLINE_RAW_MAX_BYTES), for a server set lower than 1 MiB;
  // and no more than the bucket takes, if a node made it when the server's limit was lower.
  const payloadLimit = Math.min(INLINE_RAW_MAX_BYTES, Math.floor((options.nc.info?.max_payload ?? 2 * INLINE_RAW_MAX_BYTES) / 2));
  const inlineBucket = await new Kvm(options.nc).create(bucket("raw_inline"), {
    history: 1,
    replicas,
    maxValueSize: payloadLimit + INLINE_RAW_HEADER_ALLOWANCE,
  });
  const bucketLimit = (await inlineBucket.status()).maxValueSize;
  const inlineLimit = bucketLimit < 0 ? payloadLimit : Math.max(0, Math.min(payloadLimit, bucketLimit - INLINE_RAW_HEADER_ALLOWANCE));
  const inline = new InlineRaws({ bucket: bucket("raw_inline"), js: jetstream(options.nc), jsm: sharedJsm, limit: inlineLimit });
  const holders = new IdentifierHolders(holderDocs);
  const identityStore = new IdentityStore(identities, lookups, options.secrets, listings, holders);
  return {
    users: new UserStore(users, lookups),
    tokens: new TokenStore(tokens, lookups),
    identities: identityStore,
    raws: new RawMessageStore(objects, inline, raws, lookups, chunks),
    messages: new MessageStore(messages, lookups, listings, new DiscussionStore(discussionDocs, listings)),
    contacts: new ContactStore(contacts, lookups, listings),
    keys: new PublicKeyStore(keys),
    privateKeys,
    keyCheck: new SecretKeyCheck(deployment, identityStore),
    serverCopies: new ServerCopies(copyDocs),
    oauth2Authorizations,
  };
}
