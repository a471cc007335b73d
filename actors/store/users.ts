// Users and their API tokens. A token is shown once, when it is made; only its hash is stored.
import { randomBytes, randomUUID } from "node:crypto";
import type { KvDocuments } from "../../runtime/kv-documents.ts";
import { Conflict } from "./errors.ts";
import { hashed, type Lookups } from "./lookups.ts";
import { SCHEMA_VERSION, type User } from "./model.ts";

export interface NewUser {
  name: string;
  recovery_email?: string | null;
  admin?: boolean;
  /** The user's own contact card, made by the caller. */
  contact_id: string;
}

export class UserStore {
  constructor(
    private readonly docs: KvDocuments<User>,
    private readonly lookups: Lookups,
  ) {}

  /** Creates the user and a first token for it. Names are unique. */
  async create(fields: NewUser): Promise<{ user: User; token: string }> {
    const user: User = {
      schema: SCHEMA_VERSION,
      user_id: randomUUID(),
      name: fields.name,
      recovery_email: fields.recovery_email ?? null,
      contact_id: fields.contact_id,
      admin: fields.admin ?? false,
      date_insert: new Date().toISOString(),
    };
    if (!(await this.lookups.claim(nameKey(user.name), user.user_id))) throw new Conflict(`a user named "${user.name}" already exists`);
    await this.docs.create(user.user_id, user);
    return { user, token: await this.newToken(user.user_id) };
  }

  async get(userId: string): Promise<User | null> {
    return (await this.docs.get(userId))?.value ?? null;
  }

  async byName(name: string): Promise<User | null> {
    const id = await this.lookups.get(nameKey(name));
    return id === null ? null : this.get(id);
  }

  async byToken(token: string): Promise<User | null> {
    const id = await this.lookups.get(tokenKey(token));
    return id === null ? null : this.get(id);
  }

  async list(): Promise<User[]> {
    return (await this.docs.values()).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** A new bearer token for the user (earlier ones stay valid). */
  async newToken(userId: string): Promise<string> {
    const token = `cal_${randomBytes(24).toString("base64url")}`;
    await this.lookups.set(tokenKey(token), userId);
    return token;
  }
}

const nameKey = (name: string) => `username.${hashed(name.toLowerCase())}`;
const tokenKey = (token: string) => `token.${hashed(token)}`;
