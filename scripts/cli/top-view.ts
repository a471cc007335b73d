// The text of one `caliopen top` screen: a title line, the nodes, then as many actors as fit, most
// recent state change first. The same lines are printed once when stdout is not a terminal.
import type { ActorSummary } from "../../runtime/actor-cell.ts";
import { formatState, localClock, plural, relativeTime } from "./format.ts";
import { type Column, formatTable } from "./table.ts";
import { cutTo, terminalSafe } from "./terminal-text.ts";
import type { NodeLine, TopFilter, TopSnapshot } from "./top-snapshot.ts";

const NODE_COLUMNS: Column[] = [
  { header: "NODE", maxWidth: 36 },
  { header: "HEALTH" },
  { header: "SHARDS", align: "right" },
  { header: "ACTORS", align: "right" },
  { header: "RECEIVED", align: "right" },
  { header: "REJECTED", align: "right" },
  { header: "FAILED", align: "right" },
  { header: "UPTIME", align: "right" },
];

const ACTOR_COLUMNS: Column[] = [
  { header: "KIND", maxWidth: 20 },
  { header: "KEY", maxWidth: 32 },
  { header: "NODE", maxWidth: 28 },
  { header: "STATE", maxWidth: 32 },
  { header: "SINCE" },
  { header: "BUSY" },
  { header: "RESTARTS", align: "right" },
  { header: "LAST ERROR", maxWidth: 48 },
];

export interface ViewOptions {
  filter: TopFilter;
  /** The terminal's size; undefined when printing to a pipe or file (no limit). */
  width?: number;
  height?: number;
  /** A line under the title: how to quit, or why the last refresh failed. */
  status?: string;
}

export function renderTop(snapshot: TopSnapshot, options: ViewOptions): string[] {
  const title = [
    `caliopen top  ${localClock(new Date(snapshot.at).toISOString())}`,
    `${plural(snapshot.nodes.length, "node")}, ${plural(snapshot.total, "actor")}`,
    filterText(options.filter),
  ]
    .filter((part) => part !== "")
    .join("  ");
  const head = [title, ...(options.status === undefined ? [] : [options.status]), ""];
  head.push(
    ...(snapshot.nodes.length === 0
      ? ["no node answered"]
      : formatTable(
          NODE_COLUMNS,
          snapshot.nodes.map((node) => nodeRow(node, snapshot.at)),
        ).split("\n")),
  );
  head.push("");
  // Room left for actor rows once the title, nodes, the actors' header and the footer are drawn.
  const room = options.height === undefined ? snapshot.actors.length : Math.max(0, options.height - head.length - 2);
  const shown = snapshot.actors.slice(0, room);
  const body =
    shown.length === 0
      ? []
      : formatTable(
          ACTOR_COLUMNS,
          shown.map((actor) => actorRow(actor, snapshot.at)),
        ).split("\n");
  const footer =
    snapshot.total === 0
      ? "no live actors"
      : shown.length < snapshot.total
        ? `showing ${shown.length} of ${plural(snapshot.total, "actor")}, most recent state change first`
        : `${plural(snapshot.total, "actor")}, most recent state change first`;
  const lines = [...head, ...body, footer];
  const fitted = options.height === undefined ? lines : lines.slice(0, options.height);
  const width = options.width;
  return width === undefined ? fitted : fitted.map((line) => cutTo(line, width));
}

function filterText(filter: TopFilter): string {
  const parts = [filter.kind === undefined ? null : `kind ${filter.kind}`, filter.node === undefined ? null : `node ${filter.node}`];
  const given = parts.filter((part): part is string => part !== null);
  return given.length === 0 ? "" : `(${terminalSafe(given.join(", "))})`;
}

function nodeRow(node: NodeLine, now: number): string[] {
  const health = !node.answered ? "no reply" : node.healthy === null ? "live" : node.healthy ? "healthy" : "UNHEALTHY";
  return [
    node.node,
    health,
    node.ownedShards === null ? "-" : node.shards === null ? String(node.ownedShards) : `${node.ownedShards}/${node.shards}`,
    count(node.actors),
    count(node.orders?.received ?? null),
    count(node.orders?.rejected ?? null),
    count(node.orders?.failed ?? null),
    node.startedAt === null ? "-" : uptime(now - Date.parse(node.startedAt)),
  ];
}

function actorRow(actor: ActorSummary, now: number): string[] {
  const state = formatState(actor.state);
  return [
    actor.kind,
    actor.key,
    actor.node,
    actor.status === "running" ? state : `${state} (${String(actor.status)})`,
    relativeTime(actor.since, now),
    actor.busy === true ? "busy" : "-",
    String(actor.restarts ?? "-"),
    // Checked loosely: the reply comes from a node that may run another version.
    actor.lastError ? `${relativeTime(actor.lastError.at, now)}: ${String(actor.lastError.message)}` : "-",
  ];
}

function count(value: number | null): string {
  return value === null ? "-" : String(value);
}

/** "12s", "5m 3s", "2h 5m", "3d 4h". */
export function uptime(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "-";
  const seconds = Math.floor(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${seconds % 60}s`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`;
  return `${Math.floor(seconds / 86_400)}d ${Math.floor((seconds % 86_400) / 3600)}h`;
}
