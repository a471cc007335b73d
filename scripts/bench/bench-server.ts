// A fresh nats-server (JetStream on, temporary data dir) for one scenario, stopped on error or signal;
// secured by default as a node's embedded server is (its own nkey), or as bench-security.ts says.
import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type EmbeddedNats, startEmbeddedNats } from "../../runtime/embedded-nats-server.ts";
import type { NatsEndpoint } from "../../runtime/nats-endpoint.ts";
import { type BenchSecurity, type ServerSecurity, serverSecurity } from "./bench-security.ts";
import { registerCleanup } from "./cleanup.ts";

export interface BenchServer {
  /** Its URL and the credential it requires (the nkey it made, as a node's embedded server does). */
  endpoint: NatsEndpoint;
  pid: number;
  stop(): Promise<void>;
}

export async function startBenchServer(security: BenchSecurity = "plain"): Promise<BenchServer> {
  const dir = await mkdtemp(join(tmpdir(), "caliopen-bench-nats-"));
  let secured: ServerSecurity | null = null;
  let server: EmbeddedNats;
  try {
    secured = await serverSecurity(security, dir);
    server = await startEmbeddedNats({ dataDir: dir, port: 0, security: secured.options });
  } catch (err) {
    await secured?.remove();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const running = server;
  const { remove } = secured;
  let stopped: Promise<void> | null = null;
  const stop = () =>
    (stopped ??= (async () => {
      unregister();
      await running.stop();
      await remove();
      await rm(dir, { recursive: true, force: true });
    })());
  const unregister = registerCleanup(stop);
  return { endpoint: secured.endpoint(running.endpoint), pid: running.pid, stop };
}

/** "v2.9.10" from `nats-server --version`, or "unknown". */
export function natsServerVersion(): string {
  try {
    const out = execFileSync("nats-server", ["--version"], { encoding: "utf8" });
    return /v?\d+\.\d+\.\d+\S*/.exec(out)?.[0] ?? out.trim();
  } catch {
    return "unknown";
  }
}
