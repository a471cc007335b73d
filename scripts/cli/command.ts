// What every command is made of: a description for the usage text, the options it accepts, and a
// `prepare` step that checks its arguments before any connection is opened.
import type { NatsConnection } from "@nats-io/transport-node";
import type { Subjects } from "../../runtime/subjects.ts";
import type { CommandFlags } from "./args.ts";

/** Where the command writes; each call is one or more complete lines. */
export interface CliIO {
  out(text: string): void;
  err(text: string): void;
}

export interface Session {
  nc: NatsConnection;
  subjects: Subjects;
  /** Print JSON instead of tables. */
  json: boolean;
  /** The --timeout given on the command line, if any. */
  timeoutMs: number | undefined;
  io: CliIO;
}

export type CommandRun = (session: Session) => Promise<number>;

/** A command that needs no NATS connection (e.g. one that prints configuration). */
export interface LocalRun {
  local(output: { io: CliIO; json: boolean; subjects: Subjects }): Promise<number>;
}

export interface Command {
  name: string;
  /** Arguments and options, as shown in the usage text. */
  synopsis: string;
  summary: string;
  /** The command-specific options it accepts (global options are always accepted). */
  options: readonly (keyof CommandFlags)[];
  /** Validates the arguments (throwing UsageError) and returns what to run once connected; `env` is the CLI's environment. */
  prepare(positionals: readonly string[], flags: CommandFlags, env: NodeJS.ProcessEnv): CommandRun | LocalRun;
}

/** Prints a value as JSON: compact for machines (--json), indented for people. */
export function printJson(session: Session, value: unknown): void {
  session.io.out(session.json ? JSON.stringify(value) : JSON.stringify(value, null, 2));
}
