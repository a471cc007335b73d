// `caliopen top [--kind K] [--node N] [--interval S] [--once]`: the nodes and their actors, redrawn
// in place every second on a terminal until `q` or Ctrl-C; one plain snapshot when stdout is not a
// terminal (a pipe, a file, a test) or with --once.

import { DEFAULT_MAX_WAIT_MS, DebugClient, noNodesMessage } from "../../runtime/debug-client.ts";
import type { Command, Session } from "./command.ts";
import { EXIT_FAILURE, EXIT_OK, messageOf, UsageError } from "./errors.ts";
import { openScreen } from "./terminal-screen.ts";
import { terminalSafe } from "./terminal-text.ts";
import { type TopFilter, type TopSnapshot, takeSnapshot } from "./top-snapshot.ts";
import { renderTop } from "./top-view.ts";

const DEFAULT_INTERVAL_MS = 1_000;

interface TopOptions {
  filter: TopFilter;
  intervalMs: number;
  once: boolean;
}

export const topCommand: Command = {
  name: "top",
  synopsis: "top [--kind K] [--node N] [--interval S] [--once]",
  summary: "live view of the nodes and their actors, latest state change first (q quits)",
  options: ["kind", "node", "intervalMs", "once"],
  prepare(positionals, flags) {
    if (positionals.length > 0) throw new UsageError(`top takes no arguments (filter with --kind, --node), got "${positionals.join(" ")}"`);
    const filter: TopFilter = { ...(flags.kind !== undefined && { kind: flags.kind }), ...(flags.node !== undefined && { node: flags.node }) };
    return (session) => run(session, { filter, intervalMs: flags.intervalMs ?? DEFAULT_INTERVAL_MS, once: flags.once ?? false });
  },
};

async function run(session: Session, options: TopOptions): Promise<number> {
  const live = !options.once && !session.json && process.stdout.isTTY === true;
  return live ? runLive(session, options) : runOnce(session, options);
}

async function runOnce(session: Session, options: TopOptions): Promise<number> {
  const client = new DebugClient(session.nc, session.subjects, session.timeoutMs ?? DEFAULT_MAX_WAIT_MS, (line) =>
    session.io.err(`caliopen: ${terminalSafe(line)}`),
  );
  const snapshot = await takeSnapshot(client, options.filter);
  if (session.json) session.io.out(JSON.stringify(snapshot));
  if (!snapshot.nodes.some((node) => node.answered)) {
    session.io.err(`caliopen: ${noNodesMessage(session.subjects, session.subjects.debug("nodes"))}`);
    return EXIT_FAILURE;
  }
  if (session.json) return EXIT_OK;
  // --once on a terminal fits the screen; to a pipe or a file, everything.
  const size = process.stdout.isTTY === true ? { width: process.stdout.columns, height: process.stdout.rows } : {};
  session.io.out(renderTop(snapshot, { filter: options.filter, ...size }).join("\n"));
  return EXIT_OK;
}

type Refresh = { ok: true; snapshot: TopSnapshot } | { ok: false; error: string };

async function runLive(session: Session, options: TopOptions): Promise<number> {
  let warning: string | null = null;
  const client = new DebugClient(session.nc, session.subjects, session.timeoutMs ?? DEFAULT_MAX_WAIT_MS, (line) => {
    warning = line;
  });
  let quit: () => void = () => undefined;
  const quitting = new Promise<"quit">((resolve) => {
    quit = () => resolve("quit");
  });
  let last: TopSnapshot | null = null;
  let status = "";
  const redraw = () => {
    const { width, height } = screen.size();
    const lines = last === null ? ["caliopen top", status, "", "asking the nodes…"] : renderTop(last, { filter: options.filter, width, height, status });
    screen.draw(lines);
  };
  const screen = openScreen(process.stdout, process.stdin, { quit: () => quit(), resize: () => redraw() });
  const every = `every ${options.intervalMs / 1000}s`;
  try {
    status = `${every}, q to quit`;
    redraw();
    for (;;) {
      warning = null;
      // Never rejects, so a refresh still under way when the operator quits cannot fail the exit.
      const refresh: Promise<Refresh> = takeSnapshot(client, options.filter).then(
        (snapshot) => ({ ok: true, snapshot }),
        (error: unknown) => ({ ok: false, error: messageOf(error) }),
      );
      const outcome = await Promise.race([refresh, quitting]);
      if (outcome === "quit") return EXIT_OK;
      if (session.nc.isClosed()) break;
      if (outcome.ok) last = outcome.snapshot;
      const trouble = outcome.ok ? warning : `refresh failed: ${outcome.error}`;
      status = trouble === null ? `${every}, q to quit` : `${every}, q to quit — ${terminalSafe(trouble)}`;
      redraw();
      let timer: NodeJS.Timeout | undefined;
      const tick = new Promise<"tick">((resolve) => {
        timer = setTimeout(() => resolve("tick"), options.intervalMs);
      });
      const waited = await Promise.race([quitting, tick]);
      // A pending timer would hold the process open for up to an interval after `q`.
      clearTimeout(timer);
      if (waited === "quit") return EXIT_OK;
    }
  } finally {
    screen.close();
  }
  session.io.err("caliopen: the connection to NATS was closed");
  return EXIT_FAILURE;
}
