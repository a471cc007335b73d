// `caliopen actors [--kind K] [--limit N]`: every live actor of every node, with its state.
import type { ActorSummary } from "../../runtime/actor-cell.ts";
import { DEFAULT_MAX_WAIT_MS, DebugClient, noNodesMessage } from "../../runtime/debug-client.ts";
import type { Command, Session } from "./command.ts";
import { EXIT_FAILURE, EXIT_OK, UsageError } from "./errors.ts";
import { formatState, plural, relativeTime } from "./format.ts";
import { type Column, formatTable } from "./table.ts";
import { terminalSafe } from "./terminal-text.ts";

const COLUMNS: Column[] = [
  { header: "KIND", maxWidth: 20 },
  { header: "KEY", maxWidth: 32 },
  { header: "NODE", maxWidth: 28 },
  { header: "STATUS" },
  { header: "STATE", maxWidth: 32 },
  { header: "SINCE" },
  { header: "RESTARTS", align: "right" },
  { header: "LAST ERROR", maxWidth: 40 },
  { header: "NEXT DEADLINE", maxWidth: 32 },
];

export const actorsCommand: Command = {
  name: "actors",
  synopsis: "actors [--kind K] [--limit N]",
  summary: "list the live actors of every node",
  options: ["kind", "limit"],
  prepare(positionals, flags) {
    if (positionals.length > 0) throw new UsageError(`actors takes no arguments (filter with --kind), got "${positionals.join(" ")}"`);
    return (session) => run(session, { ...(flags.kind !== undefined && { kind: flags.kind }), ...(flags.limit !== undefined && { limit: flags.limit }) });
  },
};

async function run(session: Session, query: { kind?: string; limit?: number }): Promise<number> {
  const client = new DebugClient(session.nc, session.subjects, session.timeoutMs ?? DEFAULT_MAX_WAIT_MS, (line) =>
    session.io.err(`caliopen: ${terminalSafe(line)}`),
  );
  const listing = await client.actors(query);
  if (session.json) session.io.out(JSON.stringify(listing.actors));
  if (listing.nodes.length === 0) {
    session.io.err(`caliopen: ${noNodesMessage(session.subjects, session.subjects.debug("actors"))}`);
    return EXIT_FAILURE;
  }
  if (session.json) return EXIT_OK;
  const nodes = plural(listing.nodes.length, "node");
  if (listing.actors.length === 0) {
    session.io.out(`no live actors${query.kind === undefined ? "" : ` of kind ${query.kind}`} (asked ${nodes})`);
    return EXIT_OK;
  }
  session.io.out(formatTable(COLUMNS, listing.actors.map(actorRow)));
  session.io.out(
    listing.actors.length < listing.total
      ? `showing ${listing.actors.length} of ${plural(listing.total, "actor")} on ${nodes}`
      : `${plural(listing.total, "actor")} on ${nodes}`,
  );
  return EXIT_OK;
}

function actorRow(actor: ActorSummary): string[] {
  return [
    actor.kind,
    actor.key,
    actor.node,
    actor.busy ? `${actor.status} (busy)` : actor.status,
    formatState(actor.state),
    relativeTime(actor.since),
    String(actor.restarts ?? "-"),
    // Checked loosely: the reply comes from a node that may run another version.
    actor.lastError ? `${relativeTime(actor.lastError.at)}: ${actor.lastError.message}` : "-",
    nextDeadline(actor.deadlines),
  ];
}

/** The earliest pending deadline: "poll.due in 4m". */
function nextDeadline(deadlines: Record<string, string> | undefined): string {
  const [next] = Object.entries(deadlines ?? {}).sort(([, a], [, b]) => Date.parse(a) - Date.parse(b));
  return next === undefined ? "-" : `${next[0]} ${relativeTime(next[1])}`;
}
