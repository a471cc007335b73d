import { pino, type Logger } from "pino";
import { redactSecrets } from "./redact.ts";

export type { Logger };

export interface LoggerOptions {
  level?: string;
  name?: string;
  /** Where log lines go; defaults to stdout. */
  destination?: NodeJS.WritableStream;
}

/** A pino logger whose logged objects pass through secret redaction. */
export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      name: options.name ?? "caliopen",
      level: options.level ?? process.env.LOG_LEVEL ?? "info",
      hooks: {
        logMethod(args, method) {
          const redacted = args.map((arg) => (typeof arg === "object" && arg !== null && !(arg instanceof Error) ? redactSecrets(arg) : arg));
          method.apply(this, redacted as Parameters<typeof method>);
        },
      },
    },
    (options.destination ?? process.stdout) as pino.DestinationStream,
  );
}

export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
