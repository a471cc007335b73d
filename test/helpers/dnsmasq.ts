// A real DNS server for the tests: dnsmasq (Debian's `dnsmasq-base`) on a free loopback port, UDP and
// TCP, serving the given resource records (`--dns-rr`, any type, hex data) and answering NXDOMAIN for
// every other name of the given zones, never asking upstream.
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../scripts/local-servers/free-port.ts";
import { sleep } from "../../scripts/local-servers/wait.ts";

export interface TestDns {
  /** `127.0.0.1:<port>`, for a resolver setting. */
  resolver: string;
  stop(): Promise<void>;
}

export interface DnsRecord {
  name: string;
  type: number;
  data: Uint8Array;
}

export async function startTestDns(options: { zones: string[]; records: DnsRecord[]; ednsPacketMax?: number }): Promise<TestDns> {
  const dir = await mkdtemp(join(tmpdir(), "caliopen-dnsmasq-"));
  const port = await freePort();
  const args = [
    "--keep-in-foreground",
    `--port=${port}`,
    "--listen-address=127.0.0.1",
    "--bind-interfaces",
    "--no-resolv",
    "--no-hosts",
    "--no-poll",
    "--user=root",
    `--pid-file=${join(dir, "dnsmasq.pid")}`,
    `--log-facility=${join(dir, "dnsmasq.log")}`,
    ...options.zones.map((zone) => `--local=/${zone}/`),
    ...options.records.map((record) => `--dns-rr=${record.name},${record.type},${Buffer.from(record.data).toString("hex")}`),
    ...(options.ednsPacketMax === undefined ? [] : [`--edns-packet-max=${options.ednsPacketMax}`]),
  ];
  const child = spawn("dnsmasq", args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const failed = new Promise<never>((_, reject) => {
    child.once("error", (err) => reject(new Error(`cannot run dnsmasq (install dnsmasq-base: scripts/setup.sh --test-peers): ${err.message}`)));
    child.once("exit", (code) => reject(new Error(`dnsmasq exited with ${code}: ${stderr}`)));
  });
  failed.catch(() => undefined);
  // Ready once it has written its pid file (it binds its sockets before).
  const deadline = Date.now() + 5000;
  for (;;) {
    const pid = await readFile(join(dir, "dnsmasq.pid"), "utf8").catch(() => "");
    if (pid.trim() !== "") break;
    if (child.exitCode !== null || Date.now() > deadline) {
      await rm(dir, { recursive: true, force: true });
      await Promise.race([failed, sleep(10)]);
      throw new Error(`dnsmasq did not start: ${stderr}`);
    }
    await sleep(20);
  }
  return {
    resolver: `127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await Promise.race([exited, sleep(3000)]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
