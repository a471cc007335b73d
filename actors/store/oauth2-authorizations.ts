// Authorizations in progress: a user asked to connect a mail account at an OAuth 2.0 provider and has not
// come back from its consent page yet. Each is kept AUTHORIZATION_TTL_MS at most (the bucket's TTL)
// under the `state` the provider hands back, which names the user's part of the bucket and 256 random
// bits; taking one removes it by compare-and-swap, so a state is good once. Its PKCE verifier is sealed
// like credentials, bound to the state. A user has a few in progress at most.
import { randomBytes } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import { KvDocuments } from "../../runtime/kv-documents.ts";
import type { SealedSecret, SecretBox } from "../../runtime/secret-box.ts";
import { Conflict } from "./errors.ts";
import { userToken } from "./listings.ts";
import { SCHEMA_VERSION } from "./model.ts";

export const AUTHORIZATION_TTL_MS = 10 * 60_000;
export const MAX_AUTHORIZATIONS_PER_USER = 5;
/** `<user token>.<random id>`: the key it is stored under. */
const STATE = /^[0-9a-f]{32}\.[A-Za-z0-9_-]{43}$/;

export interface PendingAuthorization {
  user_id: string;
  identity_id: string;
  provider: string;
  /** The login's user name when it is not the identity's address. */
  username: string | null;
  /** RFC 7636's code_verifier, sent with the code to prove this platform asked for it. */
  code_verifier: string;
  expires_at: string;
}

interface StoredAuthorization extends Omit<PendingAuthorization, "code_verifier"> {
  schema: number;
  sealed_verifier: SealedSecret;
}

export class OAuth2Authorizations {
  constructor(
    private readonly docs: KvDocuments<StoredAuthorization>,
    /** null where secrets are not handled (the operator CLI): beginning or taking one then fails. */
    private readonly box: SecretBox | null,
    private readonly ttlMs: number = AUTHORIZATION_TTL_MS,
  ) {}

  static async open(nc: NatsConnection, bucket: string, replicas: number, box: SecretBox | null): Promise<OAuth2Authorizations> {
    return new OAuth2Authorizations(await KvDocuments.open<StoredAuthorization>(nc, bucket, replicas, { ttlMs: AUTHORIZATION_TTL_MS }), box);
  }

  static isState(value: string): boolean {
    return STATE.test(value);
  }

  /** Records an authorization; its state is what the provider hands back. A Conflict past the user's limit. */
  async begin(pending: Omit<PendingAuthorization, "expires_at">, now = Date.now()): Promise<{ state: string; expires_at: string }> {
    const token = userToken(pending.user_id);
    const held = await this.docs.keys(`${token}.*`);
    if (held.length >= MAX_AUTHORIZATIONS_PER_USER) {
      throw new Conflict(`${MAX_AUTHORIZATIONS_PER_USER} authorizations are already in progress: finish one, or wait ${this.ttlMs / 60_000} minutes`);
    }
    const state = `${token}.${randomBytes(32).toString("base64url")}`;
    const { code_verifier: verifier, ...rest } = pending;
    const expiresAt = new Date(now + this.ttlMs).toISOString();
    await this.docs.create(state, { schema: SCHEMA_VERSION, ...rest, expires_at: expiresAt, sealed_verifier: this.secrets().seal(verifier, aad(state)) });
    return { state, expires_at: expiresAt };
  }

  /** The authorization `state` names, taken for good; null when there is none (unknown, expired or taken). */
  async take(state: string, now = Date.now()): Promise<PendingAuthorization | null> {
    if (!OAuth2Authorizations.isState(state)) return null;
    const found = await this.docs.get(state);
    if (found === null || !(await this.docs.deleteIf(state, found.revision))) return null;
    const { schema: _schema, sealed_verifier: sealed, ...pending } = found.value;
    if (Date.parse(pending.expires_at) <= now) return null;
    return { ...pending, code_verifier: this.secrets().open(sealed, aad(state)) };
  }

  private secrets(): SecretBox {
    if (this.box === null) throw new Error("this process has no secret key (CALIOPEN_SECRET_KEY): it cannot handle OAuth2 authorizations");
    return this.box;
  }
}

const aad = (state: string) => `oauth2-authorization:${state}`;
