// Scenario 6: inbound SMTP, messages/s end to end. Postfix's smtp-source (a C load generator) sends N
// messages over a few parallel sessions, each session keeping its connection, to (a) a bare smtp-server
// that reads each message and drops it — the baseline — and (b) the node's inbound SMTP server with a
// local recipient. The node answers 250 only once every recipient's import replied, i.e.
// once the message is stored as the user's message, so smtp-source exiting 0 means all N are stored;
// the store is counted afterwards to make sure.
import { spawn } from "node:child_process";
import { SMTPServer } from "smtp-server";
import { childMain } from "./child-protocol.ts";
import { registerCleanup } from "./cleanup.ts";
import { reapedChildrenCpuMs, startCpuMeter } from "./cpu-meter.ts";
import { benchUser, profilePhase, startMailNode } from "./mail-bench.ts";
import type { SmtpResult, SmtpRun, SmtpTask } from "./results.ts";

const SMTP_SOURCE = "/usr/sbin/smtp-source";
const SENDER = "sender@elsewhere.test";

/** Runs smtp-source to completion; throws unless it exits 0. */
async function smtpSource(port: number, to: string, count: number, sessions: number, size: number): Promise<{ ms: number; cpuMs: number }> {
  const args = [
    "-s",
    String(sessions),
    "-m",
    String(count),
    "-l",
    String(size),
    "-d",
    "-M",
    "bench.test",
    "-f",
    SENDER,
    "-t",
    to,
    "-S",
    "smtp bench",
    `127.0.0.1:${port}`,
  ];
  const cpuBefore = reapedChildrenCpuMs();
  const started = performance.now();
  const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    const child = spawn(SMTP_SOURCE, args, { stdio: ["ignore", "pipe", "pipe"] });
    const unregister = registerCleanup(() => void child.kill("SIGKILL"));
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.once("error", reject);
    child.once("close", (exitCode) => {
      unregister();
      resolve({ code: exitCode, output });
    });
  });
  const ms = performance.now() - started;
  if (code !== 0) throw new Error(`smtp-source ${args.join(" ")} exited with ${code}: ${output.trim().slice(-500)}`);
  return { ms, cpuMs: reapedChildrenCpuMs() - cpuBefore };
}

/** The baseline: smtp-server with the node's settings, reading every message and dropping it. */
async function bareServer(): Promise<{ port: number; received(): number; close(): Promise<void> }> {
  let received = 0;
  const server = new SMTPServer({
    name: "bench.test",
    size: 25 * 1024 * 1024,
    disabledCommands: ["AUTH", "STARTTLS"],
    hideSTARTTLS: true,
    authOptional: true,
    hideENHANCEDSTATUSCODES: false,
    disableReverseLookup: true,
    logger: false,
    onData(stream, _session, callback) {
      stream.on("data", () => undefined);
      stream.once("end", () => {
        received += 1;
        callback(null, "accepted");
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.server.address();
  const close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  const unregister = registerCleanup(close);
  return {
    port: typeof address === "object" && address !== null ? address.port : 0,
    received: () => received,
    close: () => {
      unregister();
      return close();
    },
  };
}

childMain<SmtpTask>(async (task): Promise<SmtpResult> => {
  const progress = (message: string) => process.stderr.write(`bench:   smtp: ${message}\n`);
  // A warm-up round first on each side (JIT, connections' first use), not timed.
  const warmup = Math.max(30, Math.round(task.messages / 10));
  const run = async (port: number, to: string, received: () => Promise<number>): Promise<SmtpRun> => {
    await smtpSource(port, to, warmup, task.sessions, task.size);
    const before = await received();
    const meter = startCpuMeter(task.serverPid);
    const sent = await smtpSource(port, to, task.messages, task.sessions, task.size);
    const cpu = meter();
    return {
      messages: task.messages,
      ms: sent.ms,
      perSecond: (task.messages * 1000) / sent.ms,
      cpuMs: cpu.selfMs,
      natsCpuMs: cpu.otherMs,
      received: (await received()) - before,
      loadCpuMs: sent.cpuMs,
    };
  };

  const bare = await bareServer();
  const baseline = await run(bare.port, "someone@bench.test", async () => bare.received());
  await bare.close();
  progress(`bare smtp-server: ${baseline.perSecond.toFixed(0)} messages/s`);
  if (baseline.received !== task.messages) throw new Error(`the bare server read ${baseline.received} messages, ${task.messages} were sent`);

  const mail = await startMailNode(task.endpoint, { smtp: true, push: false });
  try {
    if (mail.smtpPort === null) throw new Error("the node runs no inbound SMTP server");
    const { userId, address } = await benchUser(mail.store, "bench");
    const stopProfile = await profilePhase("smtp-node");
    const node = await run(mail.smtpPort, address, () => mail.storedMessages(userId));
    await stopProfile();
    progress(`node: ${node.perSecond.toFixed(0)} messages/s, ${node.received} stored`);
    if (node.received !== task.messages) throw new Error(`smtp-source got 250 for ${task.messages} messages but ${node.received} were stored`);
    return { sessions: task.sessions, size: task.size, warmup, baseline, node, warnings: mail.warnings() };
  } finally {
    await mail.stop();
  }
});
