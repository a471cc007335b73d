// The API's users (their bearer tokens are in tokens.ts). A disabled user keeps their tokens, but the
// API refuses them until the user is enabled again.
import { randomUUID } from "node:crypto";
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

  /** Creates the user (with no token: see TokenStore.create). Names are unique. */
  async create(fields: NewUser): Promise<User> {
    const user: User = {
      schema: SCHEMA_VERSION,
      user_id: randomUUID(),
      name: fields.name,
      recovery_email: fields.recovery_email ?? null,
      contact_id: fields.contact_id,
      admin: fields.admin ?? false,
      date_insert: new Date().toISOString(),
      disabled_at: null,
    };
    if (!(await this.lookups.claim(nameKey(user.name), user.user_id))) throw new Conflict(`a user named "${user.name}" already exists`);
    await this.docs.create(user.user_id, user);
    return user;
  }

  async get(userId: string): Promise<User | null> {
    return (await this.docs.get(userId))?.value ?? null;
  }

  async byName(name: string): Promise<User | null> {
    const id = await this.lookups.get(nameKey(name));
    return id === null ? null : this.get(id);
  }

  async list(): Promise<User[]> {
    return (await this.docs.values()).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Disables the user, or enables them again; resolves to the user as stored, null when there is none. */
  async setDisabled(userId: string, disabled: boolean, now = new Date()): Promise<User | null> {
    return this.docs.update(userId, (user) => (isDisabled(user) === disabled ? null : { ...user, disabled_at: disabled ? now.toISOString() : null }));
  }
}

export function isDisabled(user: User): boolean {
  return (user.disabled_at ?? null) !== null;
}

const nameKey = (name: string) => `username.${hashed(name.toLowerCase())}`;
