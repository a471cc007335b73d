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

/** `env` adds to (or overrides) the environment the CLI gets. */
export function startCli(args: string[], env: Record<string, string> = {}): RunningCli {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: tmpdir(),
    env: { ...process.env, LOG_LEVEL: "silent", NATS_URL: "", CALIOPEN_NAMESPACE: "", FORCE_COLOR: "0", ...env },
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<CliResult>((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
  return { stdout: () => stdout, stderr: () => stderr, exited };
}
