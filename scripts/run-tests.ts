// Runs every test file (test/**/*.test.ts) in its own process, two at a time, and ends with the line
// `N passed, N failed` counted over all tests. A file that crashes before uvu prints its totals counts
// as one failed test, so a broken file can never pass silently.
import { spawn } from "node:child_process";
import { readdir } from "node:fs/promises";
import { cpus } from "node:os";
import { join, relative } from "node:path";

interface FileResult {
  file: string;
  passed: number;
  failed: number;
  skipped: number;
  output: string;
  ms: number;
}

const root = new URL("..", import.meta.url).pathname;

async function findTests(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await findTests(path)));
    else if (entry.name.endsWith(".test.ts")) out.push(path);
  }
  return out.sort();
}

function runFile(file: string): Promise<FileResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--expose-gc", "--import", "tsx", file], {
      cwd: root,
      env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? "silent", FORCE_COLOR: "0" },
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), Number(process.env.TEST_FILE_TIMEOUT_MS ?? 180_000));
    child.on("close", (code) => {
      clearTimeout(timer);
      const total = Number(/Total:\s+(\d+)/.exec(output)?.[1] ?? NaN);
      const passed = Number(/Passed:\s+(\d+)/.exec(output)?.[1] ?? NaN);
      const skipped = Number(/Skipped:\s+(\d+)/.exec(output)?.[1] ?? 0);
      const rel = relative(root, file);
      if (Number.isNaN(total) || Number.isNaN(passed)) {
        resolve({ file: rel, passed: 0, failed: 1, skipped: 0, output: `${output}\n(exited with ${code} before reporting results)`, ms: Date.now() - started });
        return;
      }
      const failed = Math.max(total - passed - skipped, code === 0 ? 0 : 1);
      resolve({ file: rel, passed, failed, skipped, output, ms: Date.now() - started });
    });
  });
}

async function main(): Promise<void> {
  const filter = process.argv.slice(2);
  const files = (await findTests(join(root, "test"))).filter((file) => filter.length === 0 || filter.some((f) => file.includes(f)));
  const parallel = Math.max(1, Math.min(Number(process.env.TEST_PARALLEL ?? 2), cpus().length));
  const results: FileResult[] = [];
  const queue = [...files];
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
        const result = await runFile(file);
        results.push(result);
        const mark = result.failed > 0 ? "FAIL" : "ok  ";
        process.stdout.write(`${mark} ${result.file}  (${result.passed} passed, ${result.failed} failed, ${(result.ms / 1000).toFixed(1)} s)\n`);
        if (result.failed > 0) process.stdout.write(`${indent(result.output)}\n`);
      }
    }),
  );
  const passed = results.reduce((sum, r) => sum + r.passed, 0);
  const failed = results.reduce((sum, r) => sum + r.failed, 0);
  const skipped = results.reduce((sum, r) => sum + r.skipped, 0);
  if (files.length === 0) process.stdout.write("no test files found\n");
  process.stdout.write(`\n${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}\n`);
  process.exit(failed > 0 || files.length === 0 ? 1 : 0);
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((line) => `    ${line}`)
    .join("\n");
}

void main();
