// One nkey per role, kept as seed files in a directory of the operator's (`caliopen nats-config`): the
// server configuration names their public keys, each client signs in with its role's seed.
import { join } from "node:path";
import type { NatsEndpoint } from "../runtime/nats-endpoint.ts";
import { ensureNkeyFile } from "../runtime/nkey-file.ts";
import type { Subjects } from "../runtime/subjects.ts";
import { type NatsRole, type RoleUser, rolePermissions } from "./nats-roles.ts";

export interface RoleCredential extends RoleUser {
  seedFile: string;
}

/** The role's seed file in `dir`, made if missing (reused, so re-running keeps the same keys). */
export async function ensureRoleCredentials(dir: string, roles: readonly NatsRole[]): Promise<RoleCredential[]> {
  const credentials: RoleCredential[] = [];
  for (const role of roles) {
    const seedFile = join(dir, `${role}.nk`);
    credentials.push({ role, seedFile, nkey: await ensureNkeyFile(seedFile) });
  }
  return credentials;
}

/** What a client of this role sets to connect: its nkey and, for roles limited to their own, the inbox prefix. */
export function roleEndpoint(credential: RoleCredential, subjects: Subjects, endpoint: NatsEndpoint): NatsEndpoint {
  const prefix = rolePermissions(credential.role, subjects).inboxPrefix;
  return { ...endpoint, nkey: credential.seedFile, ...(prefix !== null && { inboxPrefix: prefix }) };
}
