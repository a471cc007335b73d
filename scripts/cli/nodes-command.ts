// `caliopen nodes`: which nodes are up, where, since when, and which NATS server each one uses.

import { DEFAULT_MAX_WAIT_MS, DebugClient, type JsonObject, noNodesMessage } from "../../runtime/debug-client.ts";
import { isJsonObject } from "../../runtime/json.ts";
import type { Command, Session } from "./command.ts";
import { EXIT_FAILURE, EXIT_OK, UsageError } from "./errors.ts";
import { plural, relativeTime } from "./format.ts";
import { type Column, formatTable } from "./table.ts";
import { terminalSafe } from "./terminal-text.ts";

const COLUMNS: Column[] = [
  { header: "NODE", maxWidth: 36 },
  { header: "HOST", maxWidth: 24 },
  { header: "PID", align: "right" },
  { header: "STARTED" },
  { header: "VERSION" },
  { header: "ACTORS", align: "right" },
  { header: "NATS", maxWidth: 48 },
];

export const nodesCommand: Command = {
  name: "nodes",
  synopsis: "nodes",
  summary: "list the running nodes",
  options: [],
  prepare(positionals) {
    if (positionals.length > 0) throw new UsageError(`nodes takes no arguments, got "${positionals.join(" ")}"`);
    return run;
  },
};

async function run(session: Session): Promise<number> {
  const client = new DebugClient(session.nc, session.subjects, session.timeoutMs ?? DEFAULT_MAX_WAIT_MS, (line) =>
    session.io.err(`caliopen: ${terminalSafe(line)}`),
  );
  const nodes = await client.nodes();
  if (session.json) session.io.out(JSON.stringify(nodes));
  if (nodes.length === 0) {
    session.io.err(`caliopen: ${noNodesMessage(session.subjects, session.subjects.debug("nodes"))}`);
    return EXIT_FAILURE;
  }
  if (!session.json) {
    session.io.out(formatTable(COLUMNS, nodes.map(nodeRow)));
    session.io.out(
      `${plural(nodes.length, "node")}, ${plural(
        nodes.reduce((sum, node) => sum + (Number(node.actors) || 0), 0),
        "actor",
      )}`,
    );
  }
  return EXIT_OK;
}

function nodeRow(node: JsonObject): string[] {
  return [
    String(node.node ?? "?"),
    String(node.host ?? "-"),
    String(node.pid ?? "-"),
    relativeTime(typeof node.startedAt === "string" ? node.startedAt : null),
    String(node.version ?? "-"),
    String(node.actors ?? "-"),
    natsServer(node.nats),
  ];
}

/** "127.0.0.1:4222 (nats-server 2.9.10, embedded, NDX…)" */
function natsServer(nats: unknown): string {
  if (!isJsonObject(nats)) return "-";
  const details = [
    typeof nats.serverVersion === "string" ? `nats-server ${nats.serverVersion}` : null,
    nats.embedded === true ? "embedded" : null,
    // Last: by default a server's name is its 56-character id, cut short by the column.
    typeof nats.serverName === "string" && nats.serverName !== "" ? nats.serverName : null,
  ].filter((detail): detail is string => detail !== null);
  const address = typeof nats.server === "string" ? nats.server : String(nats.url ?? "?");
  return details.length === 0 ? address : `${address} (${details.join(", ")})`;
}
