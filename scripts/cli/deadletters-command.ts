// `caliopen deadletters [--limit N]`: the newest orders nobody could take, read from the dead-letter
// stream. Read-only: it never creates the stream (a node does, when it starts).
import { JetStreamApiCodes, JetStreamApiError, type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { type DeadLetter, DeadLetters } from "../../runtime/dead-letters.ts";
import { decodeJson, isJsonObject } from "../../runtime/json.ts";
import type { Command, Session } from "./command.ts";
import { CliError, EXIT_OK, messageOf, UsageError } from "./errors.ts";
import { compactJson, localDateTime, plural } from "./format.ts";
import { type Column, formatTable } from "./table.ts";

const DEFAULT_LIMIT = 20;

const COLUMNS: Column[] = [
  { header: "SEQ", align: "right" },
  { header: "AT" },
  { header: "SUBJECT", maxWidth: 40 },
  { header: "NODE", maxWidth: 28 },
  { header: "REASON", maxWidth: 72 },
  { header: "PAYLOAD", maxWidth: 60 },
];

export const deadlettersCommand: Command = {
  name: "deadletters",
  synopsis: `deadletters [--limit N]`,
  summary: `list the newest dead letters (default ${DEFAULT_LIMIT}), oldest first`,
  options: ["limit"],
  prepare(positionals, flags) {
    if (positionals.length > 0) throw new UsageError(`deadletters takes no arguments, got "${positionals.join(" ")}"`);
    return (session) => run(session, flags.limit ?? DEFAULT_LIMIT);
  },
};

async function run(session: Session, limit: number): Promise<number> {
  const stream = DeadLetters.streamName(session.subjects);
  const jsm = await openManager(session, session.timeoutMs);
  const state = await streamState(jsm, stream);
  if (state === null || state.messages === 0) {
    session.io.out(session.json ? "[]" : "no dead letters");
    return EXIT_OK;
  }
  const letters = await newest(jsm, stream, state, limit);
  if (session.json) {
    session.io.out(JSON.stringify(letters));
    return EXIT_OK;
  }
  session.io.out(formatTable(COLUMNS, letters.map(letterRow)));
  session.io.out(
    letters.length < state.messages
      ? `the newest ${letters.length} of ${plural(state.messages, "dead letter")} (--limit N for more)`
      : plural(letters.length, "dead letter"),
  );
  return EXIT_OK;
}

async function openManager(session: Session, timeoutMs: number | undefined): Promise<JetStreamManager> {
  try {
    return await jetstreamManager(session.nc, timeoutMs === undefined ? {} : { timeout: timeoutMs });
  } catch (error) {
    throw new CliError(`cannot read dead letters: JetStream is not available on this NATS (${messageOf(error)})`);
  }
}

interface StreamState {
  messages: number;
  first_seq: number;
  last_seq: number;
}

/** The stream's state, or null when no node has created it yet. */
async function streamState(jsm: JetStreamManager, stream: string): Promise<StreamState | null> {
  try {
    return (await jsm.streams.info(stream)).state;
  } catch (error) {
    if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound) return null;
    throw error;
  }
}

/** Walks back from the last sequence, skipping removed messages, and returns them oldest first. */
async function newest(jsm: JetStreamManager, stream: string, state: StreamState, limit: number): Promise<DeadLetter[]> {
  const letters: DeadLetter[] = [];
  for (let seq = state.last_seq; seq >= state.first_seq && letters.length < limit; seq--) {
    const stored = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
    if (stored === null) continue;
    const decoded = decodeJson(stored.data);
    // Written by runtime/dead-letters.ts; read field by field so an odd record still shows.
    const letter = decoded.ok && isJsonObject(decoded.value) ? decoded.value : { reason: "(unreadable dead letter)", payload: stored.string() };
    letters.push({
      seq,
      subject: String(letter.subject ?? stored.subject),
      reason: String(letter.reason ?? "-"),
      node: String(letter.node ?? "-"),
      at: String(letter.at ?? stored.time.toISOString()),
      payload: letter.payload,
    });
  }
  return letters.reverse();
}

function letterRow(letter: DeadLetter): string[] {
  return [String(letter.seq ?? "-"), localDateTime(letter.at), letter.subject, letter.node, letter.reason, compactJson(letter.payload)];
}
