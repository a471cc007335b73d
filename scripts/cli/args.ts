// Command-line parsing: global options, the command name, its arguments and its own options, with the
// defaults taken from the same environment variables a node reads.
import { parseArgs } from "node:util";
import { parseDuration } from "./duration.ts";
import { messageOf, UsageError } from "./errors.ts";

export interface GlobalOptions {
  /** --nats, when given; otherwise NATS_URL or a local node's embedded server (connection.ts). */
  natsUrl: string | undefined;
  namespace: string;
  json: boolean;
  timeoutMs: number | undefined;
  help: boolean;
}

/** Options that belong to one command or another; `Command.options` says which. */
export interface CommandFlags {
  kind?: string;
  limit?: number;
  count?: number;
  request?: boolean;
  publish?: boolean;
  admin?: boolean;
  credentialsDir?: string;
  email?: string;
  recoveryEmail?: string;
  /** A token's lifetime in milliseconds; null for `never`. */
  expires?: number | null;
  node?: string;
  /** Milliseconds between refreshes (`--interval`, given in seconds). */
  intervalMs?: number;
  once?: boolean;
}

export interface ParsedArgs {
  command: string | undefined;
  positionals: string[];
  global: GlobalOptions;
  flags: CommandFlags;
  /** The command-specific options actually given, to reject those the command does not accept. */
  givenFlags: (keyof CommandFlags)[];
}

const OPTIONS = {
  nats: { type: "string" },
  namespace: { type: "string" },
  json: { type: "boolean" },
  timeout: { type: "string" },
  help: { type: "boolean", short: "h" },
  kind: { type: "string" },
  limit: { type: "string" },
  count: { type: "string" },
  request: { type: "boolean" },
  publish: { type: "boolean" },
  admin: { type: "boolean" },
  "credentials-dir": { type: "string" },
  email: { type: "string" },
  "recovery-email": { type: "string" },
  expires: { type: "string" },
  node: { type: "string" },
  interval: { type: "string" },
  once: { type: "boolean" },
} as const;

export function parseCliArgs(argv: readonly string[], env: NodeJS.ProcessEnv): ParsedArgs {
  let values: ReturnType<typeof parseOptions>["values"];
  let positionals: string[];
  try {
    ({ values, positionals } = parseOptions(argv));
  } catch (error) {
    // node:util explains the problem well ("Unknown option '--foo'"); keep its words.
    throw new UsageError(messageOf(error).replace(/\. To specify a positional argument.*$/s, ""));
  }
  const [command, ...rest] = positionals;
  const flags: CommandFlags = {
    ...(values.kind !== undefined && { kind: nonEmpty("--kind", values.kind) }),
    ...(values.limit !== undefined && { limit: positiveInteger("--limit", values.limit) }),
    ...(values.count !== undefined && { count: positiveInteger("--count", values.count) }),
    ...(values.request !== undefined && { request: values.request }),
    ...(values.publish !== undefined && { publish: values.publish }),
    ...(values.admin !== undefined && { admin: values.admin }),
    ...(values["credentials-dir"] !== undefined && { credentialsDir: nonEmpty("--credentials-dir", values["credentials-dir"]) }),
    ...(values.email !== undefined && { email: address("--email", values.email) }),
    ...(values["recovery-email"] !== undefined && { recoveryEmail: address("--recovery-email", values["recovery-email"]) }),
    ...(values.expires !== undefined && { expires: parseDuration("--expires", values.expires) }),
    ...(values.node !== undefined && { node: nonEmpty("--node", values.node) }),
    ...(values.interval !== undefined && { intervalMs: intervalMs("--interval", values.interval) }),
    ...(values.once !== undefined && { once: values.once }),
  };
  return {
    command,
    positionals: rest,
    global: {
      natsUrl: values.nats,
      namespace: values.namespace ?? env.CALIOPEN_NAMESPACE?.trim() ?? "",
      json: values.json ?? false,
      timeoutMs: values.timeout === undefined ? undefined : positiveInteger("--timeout", values.timeout),
      help: values.help ?? false,
    },
    flags,
    givenFlags: Object.keys(flags) as (keyof CommandFlags)[],
  };
}

function parseOptions(argv: readonly string[]) {
  return parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
}

export function positiveInteger(option: string, raw: string): number {
  const value = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < 1) {
    throw new UsageError(`${option} expects a positive whole number, got "${raw}"`);
  }
  return value;
}

function nonEmpty(option: string, raw: string): string {
  if (raw.trim() === "") throw new UsageError(`${option} expects a value`);
  return raw.trim();
}

/** Seconds, decimals allowed (`0.5`), at least 0.1 so a refresh cannot hammer the nodes. */
function intervalMs(option: string, raw: string): number {
  const seconds = Number(raw);
  if (!/^\d+(\.\d+)?$/.test(raw.trim()) || !Number.isFinite(seconds) || seconds < 0.1 || seconds > 86_400) {
    throw new UsageError(`${option} expects seconds between 0.1 and 86400, got "${raw}"`);
  }
  return Math.round(seconds * 1000);
}

function address(option: string, raw: string): string {
  if (!/^[^\s@]+@[^\s@]+$/.test(raw.trim())) throw new UsageError(`${option} expects an email address, got "${raw}"`);
  return raw.trim().toLowerCase();
}
