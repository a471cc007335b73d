// How bench processes talk: the parent passes a JSON task in BENCH_TASK, the child prints one
// `BENCH_RESULT {json}` line on stdout. Everything else a child prints goes to the parent's stderr.
import { spawn, spawnSync } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { cleanupAll, installSignalCleanup, registerCleanup } from "./cleanup.ts";

const RESULT_MARK = "BENCH_RESULT ";
const TASK_ENV = "BENCH_TASK";
const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = resolve(BENCH_DIR, "../..");

export interface ChildOptions {
  /** Run with --expose-gc, for memory figures. */
  exposeGc?: boolean;
  timeoutMs: number;
}

// BENCH_PROCESS_PROFILE=<dir> has every scenario process write a V8 CPU profile of its whole life
// there (Node refuses --cpu-prof in NODE_OPTIONS): to find where a scenario's time goes.
function nodeArgs(script: string, exposeGc: boolean): string[] {
  const profileDir = process.env.BENCH_PROCESS_PROFILE;
  const profile = profileDir === undefined || profileDir === "" ? [] : ["--cpu-prof", `--cpu-prof-dir=${profileDir}`];
  return [...(exposeGc ? ["--expose-gc"] : []), ...profile, "--import", "tsx", join(BENCH_DIR, script)];
}

function childEnv(task: unknown): NodeJS.ProcessEnv {
  return { ...process.env, [TASK_ENV]: JSON.stringify(task) };
}

function parseResult<R>(stdout: string, script: string): R {
  const line = stdout
    .split("\n")
    .reverse()
    .find((candidate) => candidate.startsWith(RESULT_MARK));
  if (line === undefined) throw new Error(`${script} printed no result`);
  return JSON.parse(line.slice(RESULT_MARK.length)) as R;
}

function forwardNoise(stdout: string): void {
  const noise = stdout.split("\n").filter((line) => line !== "" && !line.startsWith(RESULT_MARK));
  if (noise.length > 0) process.stderr.write(`${noise.join("\n")}\n`);
}

/** Runs a bench script in its own Node process and resolves with its result. */
export function runChild<R>(script: string, task: unknown, options: ChildOptions): Promise<R> {
  return new Promise<R>((resolvePromise, reject) => {
    const child = spawn(process.execPath, nodeArgs(script, options.exposeGc ?? false), {
      cwd: REPO_ROOT,
      env: childEnv(task),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderrTail = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => {
      process.stderr.write(chunk);
      stderrTail = (stderrTail + chunk.toString()).slice(-2_000);
    });
    // SIGTERM first, so that the child stops what it started (a Dovecot, a node); SIGKILL if it lingers.
    const running = () => child.exitCode === null && child.signalCode === null;
    const kill = () => {
      if (!running()) return;
      child.kill("SIGTERM");
      setTimeout(() => running() && child.kill("SIGKILL"), 10_000).unref();
    };
    const unregister = registerCleanup(kill);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, options.timeoutMs);
    child.once("error", (err) => {
      clearTimeout(timer);
      unregister();
      reject(err);
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      unregister();
      forwardNoise(stdout);
      if (code !== 0) {
        const why = timedOut
          ? `stopped after its timeout of ${options.timeoutMs} ms (${signal ?? `exit code ${code}`})`
          : signal !== null
            ? `killed by ${signal}`
            : `exit code ${code}`;
        reject(new Error(`${script} failed: ${why}\n${stderrTail.trim()}`));
        return;
      }
      try {
        resolvePromise(parseResult<R>(stdout, script));
      } catch (err) {
        reject(err as Error);
      }
    });
  });
}

/**
 * Runs a bench script and blocks this process's event loop until it ends. The orders bench uses it to
 * let a backlog pile up in front of a consumer that cannot read meanwhile.
 */
export function runChildSync<R>(script: string, task: unknown, timeoutMs: number): R {
  const outcome = spawnSync(process.execPath, nodeArgs(script, false), {
    cwd: REPO_ROOT,
    env: childEnv(task),
    encoding: "utf8",
    timeout: timeoutMs,
    killSignal: "SIGKILL",
    maxBuffer: 16 * 1024 * 1024,
  });
  if (outcome.error !== undefined) throw outcome.error;
  if (outcome.status !== 0) throw new Error(`${script} failed (status ${outcome.status}, signal ${outcome.signal}):\n${outcome.stderr.slice(-2_000)}`);
  if (outcome.stderr !== "") process.stderr.write(outcome.stderr);
  forwardNoise(outcome.stdout);
  return parseResult<R>(outcome.stdout, script);
}

/** The child side: reads the task, runs it, prints the result, and always stops what it started. */
export function childMain<T>(main: (task: T) => Promise<unknown>): void {
  installSignalCleanup();
  const raw = process.env[TASK_ENV];
  let exitCode = 0;
  const run = async () => {
    if (raw === undefined) throw new Error(`${TASK_ENV} is not set: this script is started by scripts/bench/run-benchmarks.ts`);
    const result = await main(JSON.parse(raw) as T);
    process.stdout.write(`${RESULT_MARK}${JSON.stringify(result)}\n`);
  };
  run()
    .catch((err: unknown) => {
      exitCode = 1;
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    })
    .finally(async () => {
      await cleanupAll();
      // Exit explicitly: a forgotten timer or socket must not keep a bench child alive.
      process.exit(exitCode);
    });
}
