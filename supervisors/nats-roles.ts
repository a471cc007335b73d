// Who may do what on the bus: the NATS subject permissions of each role a client of a Caliopen
// deployment plays, as nats-server configuration. `caliopen nats-config` prints them; the tests run real
// servers with them.
//   node      a supervisor node, and the operator CLI (it writes the store)
//   peer      an external Caliopen service: the contract's subjects only
//   observer  the debug subjects, read-only: what `caliopen nodes/actors/inspect/watch/deadletters` read,
//             and NATS service discovery (`nats micro ls|info|stats`)
import { CONTRACT } from "../contract/contract-table.ts";
import { EVENTS } from "../contract/events-table.ts";
import { DeadLetters } from "../runtime/dead-letters.ts";
import { SRV_PREFIX } from "../runtime/service-discovery.ts";
import type { Subjects } from "../runtime/subjects.ts";

export const ROLES = ["node", "peer", "observer"] as const;
export type NatsRole = (typeof ROLES)[number];

export interface RolePermissions {
  publish: string[];
  subscribe: string[];
  /** May answer requests sent to it, whatever their reply subject. */
  allowResponses: boolean;
  /**
   * The reply inbox prefix the role's clients must use (NATS_INBOX_PREFIX): a role that may subscribe
   * only to its own inboxes cannot read the replies meant for others (KV reads included).
   */
  inboxPrefix: string | null;
}

export const ROLE_DESCRIPTIONS: Readonly<Record<NatsRole, string>> = {
  node: "a supervisor node, and the operator CLI",
  peer: "an external Caliopen service: the contract's subjects only",
  observer: "the debug subjects, read-only, and NATS service discovery",
};

/**
 * NATS service discovery requests (ADR-32): to all services, then by name, then by name and id. Not
 * namespaced: the protocol's subjects are the same for every deployment on the account.
 */
const SERVICE_DISCOVERY = ["PING", "INFO", "STATS"].flatMap((verb) => [`${SRV_PREFIX}.${verb}`, `${SRV_PREFIX}.${verb}.*`, `${SRV_PREFIX}.${verb}.*.*`]);

export function rolePermissions(role: NatsRole, subjects: Subjects): RolePermissions {
  const contract = CONTRACT.map((spec) => subjects.wire(spec.subject));
  // What nodes publish for clients (notifications): read through JetStream, by nodes only.
  const events = EVENTS.map((event) => subjects.wire(event.wildcard));
  switch (role) {
    case "node": {
      // JetStream's API, KV and object store subjects are account-wide: a namespace separates
      // deployments, it does not guard them from each other (NATS accounts do).
      const jetStream = ["$JS.API.>", "$JS.ACK.>", "$JS.FC.>", "$KV.>", "$O.>"];
      return {
        // Every reply a node sends is under `_INBOX.>` or `$JS.ACK.>`, so it needs no `allow_responses`,
        // which would make nats-server track each reply subject it delivers to the node: ~20× its CPU
        // per message once thousands are pending (BENCHMARKS.md, section 8).
        publish: [...contract, ...events, subjects.wire("caliopen.>"), ...jetStream, "_INBOX.>"],
        // Service discovery is answered on `_INBOX.>` too: a requester with another reply subject gets nothing.
        subscribe: [...contract, subjects.wire("caliopen.>"), ...SERVICE_DISCOVERY, "_INBOX.>"],
        allowResponses: false,
        inboxPrefix: null,
      };
    }
    case "peer":
      return {
        publish: contract,
        // In the contract's queue groups only: a peer shares the orders it takes, it cannot copy them all.
        subscribe: [...CONTRACT.map((spec) => `${subjects.wire(spec.subject)} ${spec.queue}`), "_INBOX.peer.>"],
        allowResponses: true,
        inboxPrefix: "_INBOX.peer",
      };
    case "observer": {
      const deadLetters = DeadLetters.streamName(subjects);
      return {
        publish: [
          subjects.debug("nodes"),
          subjects.debug("actors"),
          subjects.debug("actor.>"),
          ...SERVICE_DISCOVERY,
          // `caliopen deadletters` reads the dead-letter stream, and nothing else of JetStream.
          "$JS.API.INFO",
          `$JS.API.STREAM.INFO.${deadLetters}`,
          `$JS.API.STREAM.MSG.GET.${deadLetters}`,
        ],
        subscribe: [subjects.debug("transitions.>"), "_INBOX.observer.>"],
        allowResponses: false,
        inboxPrefix: "_INBOX.observer",
      };
    }
  }
}

export interface RoleUser {
  role: NatsRole;
  /** The user's public nkey (`U…`). */
  nkey: string;
}

/** An `authorization` block for nats-server: one nkey user per role, with the role's permissions. */
export function authorizationBlock(users: readonly RoleUser[], subjects: Subjects): string {
  const entries = users.map(({ role, nkey }) => {
    const permissions = rolePermissions(role, subjects);
    return [
      `    # ${role}: ${ROLE_DESCRIPTIONS[role]}${permissions.inboxPrefix === null ? "" : ` (NATS_INBOX_PREFIX=${permissions.inboxPrefix})`}`,
      `    {`,
      `      nkey: ${quote(nkey)}`,
      `      permissions: {`,
      `        publish: { allow: ${list(permissions.publish)} }`,
      `        subscribe: { allow: ${list(permissions.subscribe)} }`,
      ...(permissions.allowResponses ? [`        allow_responses: true`] : []),
      `      }`,
      `    }`,
    ].join("\n");
  });
  return `authorization {\n  users = [\n${entries.join("\n")}\n  ]\n}\n`;
}

function list(items: readonly string[]): string {
  return `[${items.map(quote).join(", ")}]`;
}

function quote(text: string): string {
  return JSON.stringify(text);
}
