// Runs the `caliopen` CLI as a child process (`node bin/caliopen.js …`) from an unrelated working
// directory, as an operator would.
import { spawn } from "node:child_process";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";

const BIN = fileURLToPath(new URL("../../bin/caliopen.js", import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunningCli {
  stdout(): string;
  stderr(): string;
  exited: Promise<CliResult>;
}

/** `env` adds to a clean environment: no NATS_* or CALIOPEN_* setting of the test's own leaks in. */
export function startCli(args: string[], env: Record<string, string> = {}): RunningCli {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(NATS_|CALIOPEN_)/.test(name)));
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: tmpdir(),
    env: { ...inherited, LOG_LEVEL: "silent", FORCE_COLOR: "0", ...env },
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<CliResult>((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
  return { stdout: () => stdout, stderr: () => stderr, exited };
}
