// `caliopen`: the operator CLI (started by bin/caliopen.js). Parses the command line, connects to NATS,
// runs one command, closes the connection and exits with the command's status.
import type { NatsEndpoint } from "../../runtime/nats-endpoint.ts";
import { Subjects } from "../../runtime/subjects.ts";
import { parseCliArgs } from "./args.ts";
import type { CliIO, Command, CommandRun } from "./command.ts";
import { findCommand } from "./commands.ts";
import { cliEndpoint, openNats } from "./connection.ts";
import { CliError, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, messageOf, UsageError } from "./errors.ts";
import { usage } from "./usage.ts";

export async function runCli(argv: readonly string[], io: CliIO, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  try {
    const args = parseCliArgs(argv, env);
    if (args.global.help || args.command === "help") {
      io.out(usage());
      return EXIT_OK;
    }
    if (args.command === undefined) {
      io.err(usage());
      return EXIT_USAGE;
    }
    const command = findCommand(args.command);
    if (command === undefined) {
      io.err(`caliopen: unknown command "${args.command}"\n\n${usage()}`);
      return EXIT_USAGE;
    }
    rejectForeignOptions(command, args.givenFlags);
    const commandRun = command.prepare(args.positionals, args.flags, env);
    if (typeof commandRun !== "function") return await commandRun.local({ io, json: args.global.json, subjects: namespaced(args.global.namespace) });
    return await connectAndRun(
      commandRun,
      cliEndpoint(args.global.natsUrl, env),
      namespaced(args.global.namespace),
      args.global.json,
      args.global.timeoutMs,
      io,
    );
  } catch (error) {
    if (error instanceof CliError) {
      io.err(`caliopen: ${error.message}`);
      if (error instanceof UsageError) io.err("(caliopen --help shows the usage)");
      return error.exitCode;
    }
    io.err(`caliopen: ${messageOf(error)}`);
    return EXIT_FAILURE;
  }
}

async function connectAndRun(
  run: CommandRun,
  endpoint: NatsEndpoint,
  subjects: Subjects,
  json: boolean,
  timeoutMs: number | undefined,
  io: CliIO,
): Promise<number> {
  const nc = await openNats(endpoint);
  try {
    return await run({ nc, subjects, json, timeoutMs, io });
  } finally {
    await nc.close().catch(() => undefined);
  }
}

function rejectForeignOptions(command: Command, given: readonly string[]): void {
  const foreign = given.filter((flag) => !(command.options as readonly string[]).includes(flag));
  const asOption = (flag: string) => `--${flag.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`;
  if (foreign.length > 0) throw new UsageError(`${command.name} does not take ${foreign.map(asOption).join(", ")}`);
}

function namespaced(namespace: string): Subjects {
  try {
    return new Subjects(namespace);
  } catch (error) {
    throw new UsageError(messageOf(error));
  }
}

const processIO: CliIO = {
  out: (text) => void process.stdout.write(`${text}\n`),
  err: (text) => void process.stderr.write(`${text}\n`),
};

process.exitCode = await runCli(process.argv.slice(2), processIO);
