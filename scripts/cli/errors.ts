// Errors the CLI reports as one line (`caliopen: …`) with a chosen exit code, never as a stack trace.

export const EXIT_OK = 0;
/** The command ran but failed: NATS unreachable, nothing found, an error reply. */
export const EXIT_FAILURE = 1;
/** The command line itself is wrong: unknown command or option, bad JSON, missing argument. */
export const EXIT_USAGE = 2;

export class CliError extends Error {
  override readonly name = "CliError";
  constructor(
    message: string,
    readonly exitCode: number = EXIT_FAILURE,
  ) {
    super(message);
  }
}

export class UsageError extends CliError {
  constructor(message: string) {
    super(message, EXIT_USAGE);
  }
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
