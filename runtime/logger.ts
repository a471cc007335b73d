import { type Logger, pino } from "pino";
import { redactSecrets } from "./redact.ts";

export type { Logger };

export interface LoggerOptions {
  level?: string;
  name?: string;
  /** Where log lines go; defaults to stdout. */
  destination?: NodeJS.WritableStream;
}

/** A pino logger that redacts secrets from every logged object and from child-logger bindings. */
export function createLogger(options: LoggerOptions = {}): Logger {
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
    (options.destination ?? process.stdout) as pino.DestinationStream,
  );
  // pino formats only the root's bindings; children inherit this `child` through their prototype.
  const child = logger.child;
  logger.child = function (this: Logger, bindings, childOptions) {
    return child.call(this, redactSecrets(bindings) as typeof bindings, childOptions);
  } as typeof logger.child;
  return logger;
}

export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
