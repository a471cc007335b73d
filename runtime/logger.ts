import { type Logger, pino } from "pino";
import { prettyFactory } from "pino-pretty";
import { redactSecrets } from "./redact.ts";
import { StartupError } from "./startup-error.ts";

export type { Logger };

export const LOG_FORMATS = ["json", "pretty"] as const;
/** `json`: one JSON object a line, for machines; `pretty`: coloured lines for people. */
export type LogFormat = (typeof LOG_FORMATS)[number];
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

export interface LoggerOptions {
  level?: string;
  name?: string;
  /** Where log lines go; defaults to stdout. */
  destination?: NodeJS.WritableStream;
  /** Default: pretty when the destination is stdout and stdout is a terminal, JSON otherwise. */
  format?: LogFormat;
}

/** LOG_FORMAT: undefined (unset) picks by terminal; anything but `json` or `pretty` is a startup error. */
export function logFormatFromEnv(env: NodeJS.ProcessEnv = process.env): LogFormat | undefined {
  const raw = env.LOG_FORMAT?.trim().toLowerCase();
  if (raw === undefined || raw === "") return undefined;
  const format = LOG_FORMATS.find((candidate) => candidate === raw);
  if (format === undefined) throw new StartupError(`LOG_FORMAT must be one of ${LOG_FORMATS.join(", ")}, got "${env.LOG_FORMAT}"`);
  return format;
}

/** LOG_LEVEL, checked here so that a typo is one clear line rather than pino's exception. */
export function logLevelFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const raw = env.LOG_LEVEL?.trim().toLowerCase();
  if (raw === undefined || raw === "") return "info";
  if (!LOG_LEVELS.some((level) => level === raw)) throw new StartupError(`LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}, got "${env.LOG_LEVEL}"`);
  return raw;
}

/** A pino logger that redacts secrets from every logged object and from child-logger bindings. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const out = options.destination ?? process.stdout;
  const format = options.format ?? (out === process.stdout && process.stdout.isTTY === true ? "pretty" : "json");
  const logger = pino(
    {
      name: options.name ?? "caliopen",
      level: options.level ?? process.env.LOG_LEVEL ?? "info",
      formatters: {
        bindings: (bindings) => redactSecrets(bindings) as Record<string, unknown>,
        log: (object) => {
          // Errors keep their own shape (pino serializes them); everything else is redacted.
          const errors = Object.entries(object).filter(([, value]) => value instanceof Error);
          return { ...(redactSecrets(object) as Record<string, unknown>), ...Object.fromEntries(errors) };
        },
      },
    },
    format === "pretty" ? prettyDestination(out) : (out as pino.DestinationStream),
  );
  // pino formats only the root's bindings; children inherit this `child` through their prototype.
  const child = logger.child;
  logger.child = function (this: Logger, bindings, childOptions) {
    return child.call(this, redactSecrets(bindings) as typeof bindings, childOptions);
  } as typeof logger.child;
  return logger;
}

/**
 * Rewrites each JSON line (already redacted by the formatters above) for a person, synchronously:
 * pino-pretty's own stream buffers, and a node's last lines before `process.exit` would be lost.
 */
function prettyDestination(out: NodeJS.WritableStream): pino.DestinationStream {
  const prettify = prettyFactory({
    // One node per terminal: its pid, host and name would repeat on every line.
    ignore: "pid,hostname,name",
    translateTime: "SYS:HH:MM:ss.l",
    // One line an event, so a terminal scrolls like the JSON it stands for.
    singleLine: true,
    colorize: colorsFor(out),
  });
  return { write: (line: string) => void out.write(prettify(line)) };
}

/** Colours on a terminal unless NO_COLOR is set; FORCE_COLOR (non-zero) asks for them anywhere. */
function colorsFor(out: NodeJS.WritableStream): boolean {
  const force = process.env.FORCE_COLOR;
  if (force !== undefined && force !== "") return force !== "0" && force !== "false";
  if (process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== "") return false;
  return "isTTY" in out && out.isTTY === true;
}

export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
