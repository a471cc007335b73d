// `caliopen inspect KIND/KEY`: one actor's summary and context, as its node shows it (secrets redacted).

import { DEFAULT_MAX_WAIT_MS, DebugClient } from "../../runtime/debug-client.ts";
import { type ActorRef, formatActorRef, parseActorRef } from "./actor-ref.ts";
import type { Command, Session } from "./command.ts";
import { printJson } from "./command.ts";
import { EXIT_FAILURE, EXIT_OK } from "./errors.ts";
import { plural } from "./format.ts";
import { terminalSafe } from "./terminal-text.ts";

export const inspectCommand: Command = {
  name: "inspect",
  synopsis: "inspect KIND/KEY",
  summary: "show one live actor with its context (secrets redacted)",
  options: [],
  prepare(positionals) {
    const ref = parseActorRef("inspect", positionals);
    return (session) => run(session, ref);
  },
};

async function run(session: Session, ref: ActorRef): Promise<number> {
  const client = new DebugClient(session.nc, session.subjects, session.timeoutMs ?? DEFAULT_MAX_WAIT_MS, (line) =>
    session.io.err(`caliopen: ${terminalSafe(line)}`),
  );
  const result = await client.inspect(ref.kind, ref.key);
  if (result.found.length === 0) {
    session.io.err(`caliopen: no live actor ${formatActorRef(ref)} (asked ${plural(result.asked, "node")})`);
    return EXIT_FAILURE;
  }
  if (result.found.length > 1) {
    // Placement keeps one live actor per key; two means a handoff is under way or placement is broken.
    session.io.err(`caliopen: warning: ${formatActorRef(ref)} is live on ${result.found.length} nodes: ${result.found.map((f) => f.node).join(", ")}`);
  }
  for (const { actor } of result.found) printJson(session, actor);
  return EXIT_OK;
}
