// Everything a bench process started (nats-servers, child processes) registers its stop here, so an
// error or a Ctrl-C still stops it: nats-server runs in its own process group and would outlive us.
type Cleanup = () => Promise<void> | void;

const cleanups = new Set<Cleanup>();
let signalsInstalled = false;

/** Registers a stop action; the returned function unregisters it once the resource is gone. */
export function registerCleanup(cleanup: Cleanup): () => void {
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}

/** Runs every registered stop action, newest first, ignoring failures. */
export async function cleanupAll(): Promise<void> {
  const pending = [...cleanups].reverse();
  cleanups.clear();
  for (const cleanup of pending) {
    try {
      await cleanup();
    } catch {
      // best effort: keep stopping the rest
    }
  }
}

/** On SIGINT/SIGTERM/SIGHUP: stop what we started, then exit with the conventional code. */
export function installSignalCleanup(): void {
  if (signalsInstalled) return;
  signalsInstalled = true;
  const codes: Record<string, number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };
  for (const [signal, code] of Object.entries(codes)) {
    process.once(signal, () => {
      process.stderr.write(`\nbench: ${signal}, stopping what it started…\n`);
      void cleanupAll().finally(() => process.exit(code));
    });
  }
}
