// A nats-server child process for a single-machine deployment: JetStream on, loopback only, its data
// under the node's data directory, stopped when the node stops. It admits only clients holding the
// nkey it made on first start (see embedded-nats-credentials.ts).
import { type ChildProcess, spawn } from "node:child_process";
import { chmod, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { ensureEmbeddedCredentials } from "./embedded-nats-credentials.ts";
import type { NatsEndpoint } from "./nats-endpoint.ts";
import { StartupError } from "./startup-error.ts";

export interface EmbeddedNatsOptions {
  dataDir: string;
  /** 0 picks a free port. */
  port: number;
  binary?: string;
  /** Extra nats-server arguments (tests add a monitoring port). */
  extraArgs?: string[];
  /** nats-server configuration added to the generated one (e.g. `max_payload`). */
  extraConfig?: string;
  readyTimeoutMs?: number;
  /**
   * Replaces the generated nkey: nats-server configuration that secures the server (authorization,
   * TLS, a cluster block) and what a client needs to be let in. Tests of roles and TLS use it.
   */
  security?: { config: string; client: Omit<NatsEndpoint, "url">; tls?: boolean };
}

export interface EmbeddedNats {
  url: string;
  /** The URL with what a client needs to be let in. */
  endpoint: NatsEndpoint;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

export async function startEmbeddedNats(options: EmbeddedNatsOptions): Promise<EmbeddedNats> {
  const binary = options.binary ?? "nats-server";
  if (options.port !== 0) await assertPortFree(options.port);
  const storeDir = join(options.dataDir, "jetstream");
  const runDir = join(options.dataDir, "run");
  // JetStream's files hold everything stored, raw mail included: only this user may read them.
  await mkdir(storeDir, { recursive: true, mode: 0o700 });
  await chmod(options.dataDir, 0o700);
  await stopStaleServer(options.dataDir);
  await rm(runDir, { recursive: true, force: true });
  await mkdir(runDir, { recursive: true });

  let config: string;
  let client: Omit<NatsEndpoint, "url">;
  if (options.security !== undefined) {
    ({ config, client } = options.security);
  } else {
    const credentials = await ensureEmbeddedCredentials(options.dataDir);
    config = `authorization {\n  users = [\n    { nkey: "${credentials.publicKey}" }\n  ]\n}\n`;
    client = { nkey: credentials.seedFile };
  }
  const configFile = join(options.dataDir, "nats-server.conf");
  await writeFile(configFile, `${config}\n${options.extraConfig ?? ""}`, { mode: 0o600 });

  const args = [
    "-c",
    configFile,
    "-a",
    "127.0.0.1",
    "-p",
    options.port === 0 ? "-1" : String(options.port),
    "-js",
    "-sd",
    storeDir,
    "--ports_file_dir",
    runDir,
    "-l",
    join(options.dataDir, "nats-server.log"),
    ...(options.extraArgs ?? []),
  ];
  // Its own process group: a Ctrl-C in the terminal must reach the node, which drains its connection
  // before it stops the server, and not the server first.
  const child = spawn(binary, args, { stdio: ["ignore", "ignore", "pipe"], detached: true });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));

  const spawned = await new Promise<Error | null>((resolve) => {
    child.once("spawn", () => resolve(null));
    child.once("error", (err) => resolve(err));
  });
  if (spawned !== null) {
    const code = (spawned as NodeJS.ErrnoException).code;
    throw new StartupError(
      code === "ENOENT"
        ? `nats-server not found on PATH: install it (apt-get install nats-server) or set NATS_URL to an existing NATS`
        : `cannot start nats-server: ${spawned.message}`,
    );
  }

  const port = await waitForPortsFile(child, runDir, options.readyTimeoutMs ?? 10_000, () => stderr, options.dataDir);
  const pid = child.pid ?? -1;
  await writeFile(pidFile(options.dataDir), String(pid));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = `${options.security?.tls ? "tls" : "nats"}://127.0.0.1:${port}`;
  return {
    url,
    endpoint: { url, ...client },
    port,
    pid,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
      await rm(pidFile(options.dataDir), { force: true });
    },
  };
}

async function waitForPortsFile(child: ChildProcess, runDir: string, timeoutMs: number, stderr: () => string, dataDir: string): Promise<number> {
  const file = join(runDir, `nats-server_${child.pid}.ports`);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      const log = await readFile(join(dataDir, "nats-server.log"), "utf8").catch(() => "");
      const reason = lastErrorLine(`${log}\n${stderr()}`);
      throw new StartupError(`nats-server exited at start (code ${child.exitCode})${reason ? `: ${reason}` : ""}`);
    }
    try {
      const ports = JSON.parse(await readFile(file, "utf8")) as { nats?: string[] };
      const first = ports.nats?.[0];
      if (first) return Number(new URL(first).port);
    } catch {
      // not written yet
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  child.kill("SIGKILL");
  throw new StartupError(`nats-server did not become ready within ${timeoutMs} ms`);
}

function lastErrorLine(text: string): string {
  const lines = text.split("\n").filter((line) => /\[(FTL|ERR)\]|error/i.test(line));
  return (lines.at(-1) ?? "").replace(/^.*\[(FTL|ERR)\]\s*/, "").trim();
}

async function assertPortFree(port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once("error", (err: NodeJS.ErrnoException) => {
      reject(
        new StartupError(
          err.code === "EADDRINUSE"
            ? `port ${port} is already in use: set CALIOPEN_NATS_PORT to a free port, or NATS_URL to join the NATS already there`
            : `cannot use port ${port}: ${err.message}`,
        ),
      );
    });
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve()));
  });
}

function pidFile(dataDir: string): string {
  return join(dataDir, "embedded-nats-server.pid");
}

/** A node killed with SIGKILL leaves its server running on the data dir; stop that one first. */
async function stopStaleServer(dataDir: string): Promise<void> {
  const pid = Number(await readFile(pidFile(dataDir), "utf8").catch(() => ""));
  if (!Number.isInteger(pid) || pid <= 0) return;
  const command = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
  if (!command.includes("nats-server")) return;
  process.kill(pid, "SIGTERM");
  for (let waited = 0; waited < 5_000 && (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")) !== ""; waited += 50) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
