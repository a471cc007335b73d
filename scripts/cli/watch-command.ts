// `caliopen watch KIND/KEY [--count N]`: one line per state transition of an actor, as it happens.
// Actors publish their transitions themselves; this only listens, so it also works before the actor
// exists and across restarts and handoffs.
import { decodeJson, isJsonObject } from "../../runtime/json.ts";
import { type ActorRef, formatActorRef, parseActorRef } from "./actor-ref.ts";
import type { Command, Session } from "./command.ts";
import { EXIT_FAILURE, EXIT_OK } from "./errors.ts";
import { formatState, localClock } from "./format.ts";
import { terminalSafe } from "./terminal-text.ts";

export const watchCommand: Command = {
  name: "watch",
  synopsis: "watch KIND/KEY [--count N]",
  summary: "print an actor's transitions as they happen, until Ctrl-C",
  options: ["count"],
  prepare(positionals, flags) {
    const ref = parseActorRef("watch", positionals);
    return (session) => run(session, ref, flags.count);
  },
};

async function run(session: Session, ref: ActorRef, count: number | undefined): Promise<number> {
  const subject = session.subjects.transitions(ref.kind, ref.key);
  const subscription = session.nc.subscribe(subject, count === undefined ? {} : { max: count });
  // Announce only once the server has the subscription: what happens after this line is seen.
  await session.nc.flush();
  session.io.err(`watching ${formatActorRef(ref)} on ${subject} (Ctrl-C to stop)`);
  void reportConnectionTrouble(session);
  const stop = () => subscription.unsubscribe();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  try {
    for await (const msg of subscription) {
      // The line shows what the bus said: no escape sequence of it reaches the terminal.
      session.io.out(session.json ? msg.string() : terminalSafe(transitionLine(msg.data)));
    }
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  }
  if (session.nc.isClosed()) {
    session.io.err("caliopen: the connection to NATS was closed");
    return EXIT_FAILURE;
  }
  return EXIT_OK;
}

/** "14:03:07.123  idle → working  [work]  node-1" */
export function transitionLine(data: Uint8Array): string {
  const decoded = decodeJson(data);
  if (!decoded.ok || !isJsonObject(decoded.value)) return `${localClock(null)}  (unreadable transition) ${new TextDecoder().decode(data)}`;
  const t = decoded.value;
  const from = t.from === null || t.from === undefined ? "(start)" : formatState(t.from);
  const event = typeof t.event === "string" && t.event !== "" ? t.event : "-";
  return `${localClock(typeof t.at === "string" ? t.at : null)}  ${from} → ${formatState(t.to)}  [${event}]  ${String(t.node ?? "?")}`;
}

async function reportConnectionTrouble(session: Session): Promise<void> {
  for await (const status of session.nc.status()) {
    if (status.type === "disconnect") session.io.err("caliopen: lost the NATS connection, reconnecting…");
    if (status.type === "reconnect") session.io.err("caliopen: NATS connection restored");
  }
}
