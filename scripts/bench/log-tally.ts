// A runtime logger that counts what the runtime warns about (fenced actors, failed writes, dead
// letters…) instead of printing it: a benchmark must not hide that the runtime struggled.
import { Writable } from "node:stream";
import { createLogger, type Logger } from "../../runtime/logger.ts";

export interface LogTally {
  logger: Logger;
  /** Warning and error messages seen so far, by message text. */
  counts(): Record<string, number>;
}

export function tallyingLogger(): LogTally {
  const counts: Record<string, number> = {};
  let partial = "";
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      const lines = (partial + chunk.toString()).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        try {
          const { msg } = JSON.parse(line) as { msg?: unknown };
          const key = typeof msg === "string" ? msg : "(no message)";
          counts[key] = (counts[key] ?? 0) + 1;
        } catch {
          // not a log line
        }
      }
      done();
    },
  });
  return { logger: createLogger({ level: "warn", destination }), counts: () => ({ ...counts }) };
}
