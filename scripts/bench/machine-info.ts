// What the figures were measured on, for the report header.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus, loadavg, release, totalmem } from "node:os";
import { fileURLToPath } from "node:url";
import { natsServerVersion } from "./bench-server.ts";

export interface MachineInfo {
  date: string;
  cpuCount: number;
  cpuModel: string;
  memoryBytes: number;
  kernel: string;
  node: string;
  natsServer: string;
  natsJs: string;
  xstate: string;
  /** 1-minute load average when the run started. */
  loadAtStart: number;
  /** The commit measured, and how many files of the measured code differed from it. */
  commit: string;
  uncommittedRuntimeFiles: number;
}

const REPO = fileURLToPath(new URL("../../", import.meta.url));

function git(args: string[]): string {
  try {
    return execFileSync("git", args, { cwd: REPO, encoding: "utf8" }).trim();
  } catch {
    return "";
  }
}

// Read from node_modules directly: these packages do not export their package.json.
const NODE_MODULES = fileURLToPath(new URL("../../node_modules/", import.meta.url));

export function packageVersion(name: string): string {
  try {
    const manifest = JSON.parse(readFileSync(`${NODE_MODULES}${name}/package.json`, "utf8")) as { version?: string };
    return manifest.version ?? "unknown";
  } catch {
    return "unknown";
  }
}

export function machineInfo(): MachineInfo {
  const cores = cpus();
  return {
    date: new Date().toISOString(),
    cpuCount: cores.length,
    cpuModel: cores[0]?.model.trim() ?? "unknown",
    memoryBytes: totalmem(),
    kernel: `Linux ${release()}`,
    node: process.version,
    natsServer: natsServerVersion(),
    natsJs: packageVersion("@nats-io/nats-core"),
    xstate: packageVersion("xstate"),
    loadAtStart: loadavg()[0] ?? Number.NaN,
    commit: git(["rev-parse", "--short", "HEAD"]) || "unknown",
    uncommittedRuntimeFiles: git(["status", "--porcelain", "--", "runtime", "supervisors", "actors"])
      .split("\n")
      .filter((line) => line !== "").length,
  };
}
