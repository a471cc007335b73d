// Many idle SMTP connections from a child process (smtp-flood-client.ts). The child raises its own soft
// limit of file descriptors first (a shell's ulimit, up to the hard limit), so that the flood does not
// depend on the test runner's limit. Linux routes the whole of 127.0.0.0/8 to the loopback interface, so
// the connections can come from as many client addresses as a test wants.
import { type ChildProcessWithoutNullStreams, execFileSync, spawn } from "node:child_process";
import { createInterface } from "node:readline";

export interface FloodReport {
  type: "settled" | "report";
  total: number;
  /** Connections not closed yet. */
  open: number;
  /** Sessions the server holds: greeted (220), not closed and not told it is closing (421). */
  held: number;
  /** The first line each connection got (refusal texts shortened), counted. */
  firstLines: Record<string, number>;
  /** Lines after the greeting (e.g. a 421 that closed an idle session), counted. */
  laterLines: Record<string, number>;
  errors: Record<string, number>;
}

export interface Flood {
  /** Resolves once every connection got its first line or was closed. */
  settled: Promise<FloodReport>;
  report(): Promise<FloodReport>;
  /** The soft limit of file descriptors the child ran with. */
  nofile: number;
  stop(): Promise<void>;
}

const CLIENT = new URL("./smtp-flood-client.ts", import.meta.url).pathname;

/** The soft limit of open files of this process (a child shell inherits it). */
export function ownFileLimit(): number {
  return Number(execFileSync("sh", ["-c", "ulimit -n"]).toString().trim()) || 0;
}

export async function startFlood(port: number, sources: string[], perSource: number): Promise<Flood> {
  const needed = sources.length * perSource + 100;
  // Only ever raised, and only the soft limit.
  const script = `if [ "$(ulimit -S -n)" != unlimited ] && [ "$(ulimit -S -n)" -lt ${needed} ]; then ulimit -S -n ${needed} 2>/dev/null || ulimit -S -n "$(ulimit -H -n)" 2>/dev/null; fi; echo "nofile $(ulimit -S -n)" >&2; exec "$@"`;
  const child: ChildProcessWithoutNullStreams = spawn("sh", [
    "-c",
    script,
    "sh",
    process.execPath,
    "--import",
    "tsx",
    CLIENT,
    JSON.stringify({ port, sources, perSource }),
  ]);
  let stderr = "";
  let nofile = 0;
  let limitKnown!: () => void;
  const limitLine = new Promise<void>((resolve) => (limitKnown = resolve));
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
    nofile = Number(/nofile (\d+)/.exec(stderr)?.[1] ?? nofile);
    if (nofile > 0) limitKnown();
  });
  child.once("close", () => limitKnown());
  const waiting: ((report: FloodReport) => void)[] = [];
  let resolveSettled!: (report: FloodReport) => void;
  let rejectSettled!: (err: Error) => void;
  const settled = new Promise<FloodReport>((resolve, reject) => {
    resolveSettled = resolve;
    rejectSettled = reject;
  });
  createInterface({ input: child.stdout }).on("line", (line) => {
    const report = JSON.parse(line) as FloodReport;
    if (report.type === "settled") resolveSettled(report);
    else waiting.shift()?.(report);
  });
  const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
  child.once("close", (code) => rejectSettled(new Error(`the flood client exited (${code}) before its connections settled: ${stderr}`)));
  // The shell prints the limit before it starts the client.
  await limitLine;
  return {
    settled,
    nofile,
    report: () =>
      new Promise<FloodReport>((resolve) => {
        waiting.push(resolve);
        child.stdin.write("report\n");
      }),
    stop: async () => {
      child.stdin.end();
      await exited;
    },
  };
}
