// `caliopen nats-config [--credentials-dir DIR]`: the nats-server `authorization` block of a deployment
// with one nkey user per role (node, peer, observer), on stdout to paste into the servers' configuration.
// The roles' seeds are kept in DIR (made once, mode 0600; re-running reuses them), never printed.
import { resolve } from "node:path";
import { NATS_ENV } from "../../runtime/nats-endpoint.ts";
import { Subjects } from "../../runtime/subjects.ts";
import { authorizationBlock, ROLE_DESCRIPTIONS, ROLES, rolePermissions } from "../../supervisors/nats-roles.ts";
import { ensureRoleCredentials, type RoleCredential } from "../../supervisors/role-credentials.ts";
import type { Command } from "./command.ts";
import { CliError, EXIT_OK, messageOf, UsageError } from "./errors.ts";

const DEFAULT_DIR = "nats-credentials";

export const natsConfigCommand: Command = {
  name: "nats-config",
  synopsis: "nats-config [--credentials-dir DIR]",
  summary: "print nats-server authorization for the node, peer and observer roles (seeds kept in DIR)",
  options: ["credentialsDir"],
  prepare(positionals, flags) {
    if (positionals.length > 0) throw new UsageError("nats-config takes no arguments");
    const dir = resolve(flags.credentialsDir ?? DEFAULT_DIR);
    return {
      // Permissions name the deployment's subjects, so they follow its namespace (--namespace).
      async local({ io, json, subjects }) {
        const namespace = subjects.namespace;
        let credentials: RoleCredential[];
        try {
          credentials = await ensureRoleCredentials(dir, ROLES);
        } catch (error) {
          throw new CliError(`cannot keep the roles' nkeys in ${dir}: ${messageOf(error)}`);
        }
        const block = authorizationBlock(credentials, subjects);
        if (json) {
          const roles = credentials.map((credential) => ({
            role: credential.role,
            nkey: credential.nkey,
            seed_file: credential.seedFile,
            ...rolePermissions(credential.role, subjects),
          }));
          io.out(JSON.stringify({ namespace, authorization: block, roles }));
          return EXIT_OK;
        }
        io.out(header(namespace, credentials));
        io.out(block);
        return EXIT_OK;
      },
    };
  },
};

function header(namespace: string, credentials: readonly RoleCredential[]): string {
  const subjects = new Subjects(namespace);
  const lines = [
    `# Caliopen's NATS roles${namespace === "" ? "" : ` for namespace "${namespace}"`}, made by \`caliopen nats-config\`.`,
    "# Paste into every nats-server's configuration (with TLS: see the README's cluster section).",
    "# Each client signs in with its role's nkey seed (never share them; mode 0600):",
  ];
  for (const credential of credentials) {
    const prefix = rolePermissions(credential.role, subjects).inboxPrefix;
    const settings = [`${NATS_ENV.nkey}=${credential.seedFile}`, ...(prefix === null ? [] : [`${NATS_ENV.inboxPrefix}=${prefix}`])];
    lines.push(`#   ${credential.role.padEnd(8)} ${ROLE_DESCRIPTIONS[credential.role]}: ${settings.join(" ")}`);
  }
  return lines.join("\n");
}
