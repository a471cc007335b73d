// A real HKP key server for the tests: SKS (Debian's `sks`), with an empty key database of its own in a
// temporary directory, serving HKP on a free loopback port. Building the empty database takes well
// under a second; `sks db` alone serves /pks/lookup and /pks/add (no peering, no reconciliation).
// GnuPG talks to it with `--keyserver hkp://127.0.0.1:<port>`.
//
// Debian's sks resolves every path below `-basedir` (`<dir>/etc/sks/sksconf`, `<dir>/var/lib/sks/DB`,
// `<dir>/var/log/sks`, `<dir>/var/run/sks/db_com_sock`), so the whole tree is made here.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../scripts/local-servers/free-port.ts";
import { waitFor } from "../../scripts/local-servers/wait.ts";

export interface TestKeyServer {
  /** `http://127.0.0.1:<port>`: the base URL the code is configured with. */
  url: string;
  /** `hkp://127.0.0.1:<port>`: what GnuPG is given. */
  hkp: string;
  port: number;
  /** The armored keys the server answers for a search (`op=get`), or null for its 404. */
  get(search: string): Promise<string | null>;
  stop(): Promise<void>;
}

/** `port`: a port chosen beforehand (a test configures a node with a key server that is down, then starts it). */
export async function startTestKeyServer(options: { port?: number } = {}): Promise<TestKeyServer> {
  const dir = await mkdtemp(join(tmpdir(), "caliopen-sks-"));
  const port = options.port ?? (await freePort());
  for (const sub of ["etc/sks", "var/lib/sks", "var/log/sks", "var/run/sks"]) await mkdir(join(dir, sub), { recursive: true });
  await writeFile(
    join(dir, "etc/sks/sksconf"),
    [
      `hkp_address: 127.0.0.1`,
      `hkp_port: ${port}`,
      `recon_address: 127.0.0.1`,
      `recon_port: ${await freePort()}`,
      `pagesize: 16`,
      `ptree_pagesize: 16`,
      ``,
    ].join("\n"),
  );
  await writeFile(join(dir, "etc/sks/membership"), "");
  await runToEnd("sks", ["build", "-basedir", dir, "-n", "1", "-cache", "20"], dir);

  const child = spawn("sks", ["db", "-basedir", dir], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor(
      "sks db to serve HKP",
      async () => {
        if (child.exitCode !== null) throw new Error(`sks db exited with ${child.exitCode}: ${output}${await log(dir)}`);
        return fetch(`${url}/pks/lookup?op=stats`).then(
          (response) => response.status === 200,
          () => false,
        );
      },
      10_000,
    );
  } catch (err) {
    await stopChild(child, exited);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }

  return {
    url,
    hkp: `hkp://127.0.0.1:${port}`,
    port,
    async get(search) {
      const response = await fetch(`${url}/pks/lookup?op=get&options=mr&search=${encodeURIComponent(search)}`);
      const text = await response.text();
      return response.status === 404 ? null : text;
    },
    async stop() {
      await stopChild(child, exited);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
}

function runToEnd(command: string, args: string[], dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.on("error", (err) => reject(new Error(`cannot run ${command} (install sks: scripts/setup.sh --test-peers): ${err.message}`)));
    child.on("close", async (code) =>
      code === 0 ? resolve() : reject(new Error(`${command} ${args.join(" ")} exited with ${code}: ${output}${await log(dir)}`)),
    );
  });
}

async function log(dir: string): Promise<string> {
  const logs = await Promise.all(["build.log", "db.log"].map((name) => readFile(join(dir, "var/log/sks", name), "utf8").catch(() => "")));
  return logs.join("\n").trim() === "" ? "" : `\n${logs.join("\n").slice(-2000)}`;
}
