// `npm start`: runs one supervisor node until SIGTERM/SIGINT.
import { createLogger } from "../runtime/logger.ts";
import { StartupError } from "../runtime/startup-error.ts";
import { caliopenConfigFromEnv } from "../supervisors/caliopen-config.ts";
import { caliopenServices } from "../supervisors/caliopen-services.ts";
import { type RunningNode, startNode } from "../supervisors/node.ts";
import { nodeConfigFromEnv } from "../supervisors/node-config.ts";

async function main(): Promise<void> {
  const config = nodeConfigFromEnv();
  const logger = createLogger({ level: config.logLevel, format: config.logFormat });
  // Last line of defence: a bug must be logged, not take the node down with every actor on it.
  process.on("uncaughtException", (err) => logger.error({ err: err.message, stack: err.stack }, "uncaught exception"));
  process.on("unhandledRejection", (reason) => logger.error({ err: String(reason) }, "unhandled rejection"));

  const caliopen = caliopenConfigFromEnv(process.env, config.dataDir, logger);
  // Signals are taken from the start: one that comes while the node starts stops it once it is up
  // (half-started, it could leave its nats-server running).
  let node: RunningNode | null = null;
  let pending: string | null = null;
  // npm and a terminal may deliver the same Ctrl-C more than once; a signal repeated after a few
  // seconds means the operator insists.
  let firstSignalAt = 0;
  const stop = (signal: string) => {
    if (firstSignalAt !== 0) {
      if (Date.now() - firstSignalAt < 3_000) return;
      logger.warn({ signal }, "signal repeated: exiting now without waiting");
      process.exit(1);
    }
    firstSignalAt = Date.now();
    if (node === null) {
      pending = signal;
      return;
    }
    node.shutdown(signal).then(
      () => process.exit(0),
      (err: Error) => {
        logger.error({ err: err.message }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));

  const started = await startNode(config, caliopenServices(caliopen), logger);
  node = started;
  void started.lost.then((reason) => {
    process.stderr.write(`caliopen: lost the connection to NATS for good: ${reason}\n`);
    process.exit(1);
  });
  if (pending !== null) {
    firstSignalAt = 0;
    stop(pending);
  }
}

main().catch((err: unknown) => {
  const message = err instanceof StartupError ? err.message : `node failed to start: ${(err as Error).message ?? String(err)}`;
  process.stderr.write(`caliopen: ${message}\n`);
  process.exit(1);
});
