// Postfix's smtp-sink as a real SMTP peer on a free loopback port: it accepts every message and dumps
// each transaction to its own file (`-d <dir>/%M.` : the minute, a dot and a random hex suffix). A dump
// starts with smtp-sink's own records (X-Client-Addr, X-Helo-Args, X-Mail-Args, one X-Rcpt-Args per
// RCPT, then a three-line Received header), then the message as received with LF line ends, then an
// empty line. Running as root it must drop privileges (`-u nobody`), so the dump folder is world-writable.
import { type ChildProcess, spawn } from "node:child_process";
import { chmod, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../scripts/local-servers/free-port.ts";
import { sleep, waitFor } from "../../scripts/local-servers/wait.ts";

export const SMTP_SINK = "/usr/sbin/smtp-sink";

export interface SinkMessage {
  file: string;
  helo: string;
  /** MAIL FROM address (without brackets or parameters). */
  mailFrom: string;
  /** RCPT TO addresses, in the order sent. */
  rcptTo: string[];
  /** The message as received, LF line ends (smtp-sink writes lines with "\n"). */
  content: string;
}

export interface SmtpSink {
  host: string;
  port: number;
  dir: string;
  /** Every message received so far, oldest first. */
  messages(): Promise<SinkMessage[]>;
  /** Waits until at least `count` messages were received. */
  waitForMessages(count: number, timeoutMs?: number): Promise<SinkMessage[]>;
  stop(): Promise<void>;
}

export async function startSmtpSink(options: { hostname?: string } = {}): Promise<SmtpSink> {
  const dir = await mkdtemp(join(tmpdir(), "caliopen-smtp-sink-"));
  await chmod(dir, 0o777);
  const port = await freePort();
  const asRoot = process.getuid?.() === 0;
  const args = [...(asRoot ? ["-u", "nobody"] : []), "-h", options.hostname ?? "sink.test", "-d", `${dir}/%M.`, `127.0.0.1:${port}`, "50"];
  const child: ChildProcess = spawn(SMTP_SINK, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  try {
    await waitFor(`smtp-sink on port ${port}`, async () => {
      if (child.exitCode !== null) throw new Error(`smtp-sink exited with ${child.exitCode}: ${stderr}`);
      return canConnect(port);
    });
  } catch (err) {
    child.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
    throw err;
  }

  async function messages(): Promise<SinkMessage[]> {
    const files = await readdir(dir);
    const parsed = await Promise.all(files.map(async (file) => ({ file, text: await readFile(join(dir, file), "utf8") })));
    return parsed.map(({ file, text }) => parseDump(file, text)).sort((a, b) => a.file.localeCompare(b.file));
  }

  return {
    host: "127.0.0.1",
    port,
    dir,
    messages,
    async waitForMessages(count, timeoutMs = 5_000) {
      return waitFor(
        `${count} message(s) at smtp-sink`,
        async () => {
          const found = await messages();
          return found.length >= count ? found : null;
        },
        timeoutMs,
      );
    },
    async stop() {
      if (child.exitCode === null && child.pid !== undefined) {
        child.kill("SIGTERM");
        await Promise.race([exited, sleep(2_000)]);
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Splits a dump into smtp-sink's records and the message as received. */
export function parseDump(file: string, text: string): SinkMessage {
  const lines = text.split("\n");
  let helo = "";
  let mailFrom = "";
  const rcptTo: string[] = [];
  let at = 0;
  const address = (value: string) => /<([^>]*)>/.exec(value)?.[1] ?? value.trim();
  for (; at < lines.length; at++) {
    const line = lines[at] as string;
    if (line.startsWith("X-Helo-Args: ")) helo = line.slice("X-Helo-Args: ".length);
    else if (line.startsWith("X-Mail-Args: ")) mailFrom = address(line.slice("X-Mail-Args: ".length));
    else if (line.startsWith("X-Rcpt-Args: ")) rcptTo.push(address(line.slice("X-Rcpt-Args: ".length)));
    else if (line.startsWith("Received: ")) break;
    else if (!line.startsWith("X-")) throw new Error(`${file}: unexpected smtp-sink record "${line}"`);
  }
  // The Received header smtp-sink adds: its first line and its folded continuation lines.
  at++;
  while (at < lines.length && /^[ \t]/.test(lines[at] as string)) at++;
  const rest = lines.slice(at).join("\n");
  // smtp-sink ends every dump with an empty line of its own.
  const content = rest.endsWith("\n\n") ? rest.slice(0, -1) : rest;
  return { file, helo, mailFrom, rcptTo, content };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
