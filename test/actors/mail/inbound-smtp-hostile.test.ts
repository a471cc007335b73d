// The inbound SMTP server against hostile peers on loopback, with the real store and the real inbound
// processor behind it: floods of idle connections (from one address, and from 200), a slowloris that
// trickles its DATA and one that trickles commands, STARTTLS, a 1 MiB To header, and a forged first copy
// of a mail. Legitimate mail is sent by swaks.

import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createUser } from "../../../actors/accounts/create-user.ts";
import { processInboundEmail } from "../../../actors/mail/inbound-email.ts";
import { type InboundSmtpOptions, type InboundSmtpServer, startInboundSmtp } from "../../../actors/mail/inbound-smtp-server.ts";
import type { InboundOrder } from "../../../actors/messages/inbound-import.ts";
import type { User } from "../../../actors/store/model.ts";
import { createLogger } from "../../../runtime/logger.ts";
import type { Reply } from "../../../runtime/reply.ts";
import { makeTestCertificates, type TestCertificates } from "../../../scripts/local-servers/tls-certs.ts";
import { ownFileLimit, startFlood } from "../../helpers/smtp-flood.ts";
import { type StoreFixture, startStore } from "../store/fixture.ts";

const SERVER_NAME = "mx.platform.test";

let f: StoreFixture;
let dir: string;
let certs: TestCertificates;
let bob: User;
const replies: { order: InboundOrder; reply: Reply }[] = [];

test.before(async () => {
  f = await startStore();
  dir = await mkdtemp(join(tmpdir(), "caliopen-smtp-hostile-"));
  certs = await makeTestCertificates();
  bob = (await createUser(f.store, { name: "bob", email: "bob@platform.test" })).user;
});

test.after(async () => {
  await f.nats.stop();
  await certs.remove();
  await rm(dir, { recursive: true, force: true });
});

/** A server with the real inbound processor behind it; `limits` as a test needs them. */
async function startServer(limits: Partial<InboundSmtpOptions> = {}): Promise<InboundSmtpServer> {
  return startInboundSmtp(
    {
      store: f.store,
      importRaw: async (order) => {
        const reply = await processInboundEmail(f.store, order);
        replies.push({ order, reply });
        return reply;
      },
      logger: createLogger({ level: "silent" }),
    },
    { host: "127.0.0.1", port: 0, maxSize: 10 * 1024 * 1024, maxRecipients: 10, serverName: SERVER_NAME, ...limits },
  );
}

interface SwaksResult {
  code: number | null;
  transcript: string;
}

function swaks(port: number, args: string[]): Promise<SwaksResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      "swaks",
      [
        "--server",
        "127.0.0.1",
        "--port",
        String(port),
        "--helo",
        "client.remote.test",
        "--from",
        "ann@remote.test",
        "--to",
        "bob@platform.test",
        "--suppress-data",
        ...args,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let transcript = "";
    child.stdout.on("data", (chunk: Buffer) => (transcript += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (transcript += chunk.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, transcript });
    });
  });
}

/** The SMTP replies in a swaks transcript. */
const smtpReplies = (transcript: string) =>
  transcript
    .split("\n")
    .filter((line) => /^<[-*~]/.test(line))
    .map((line) => line.replace(/^<[-*~]+\s*/, ""));

async function mailFile(headers: string[], body = `hello ${randomUUID()}`): Promise<string> {
  const path = join(dir, `${randomUUID()}.eml`);
  await writeFile(path, [...headers, "", body, ""].join("\r\n"));
  return path;
}

const bobsMessages = async () => (await f.store.messages.list(bob.user_id, { limit: 1000 })).items;

/** A hand-driven SMTP client: reads replies line by line. */
class RawSmtp {
  private buffer = "";
  private readonly lines: string[] = [];
  private wake: (() => void) | null = null;
  closed = false;
  readonly socket: Socket;

  constructor(port: number, localAddress?: string) {
    this.socket = connect({ host: "127.0.0.1", port, ...(localAddress && { localAddress }) });
    this.socket.on("data", (chunk: Buffer) => {
      this.buffer += chunk.toString("latin1");
      for (let end = this.buffer.indexOf("\r\n"); end !== -1; end = this.buffer.indexOf("\r\n")) {
        this.lines.push(this.buffer.slice(0, end));
        this.buffer = this.buffer.slice(end + 2);
      }
      this.wake?.();
    });
    this.socket.on("error", () => undefined);
    this.socket.on("close", () => {
      this.closed = true;
      this.wake?.();
    });
  }

  /** The next complete reply (its last line), or null once the server closed the connection. */
  async reply(): Promise<string | null> {
    for (;;) {
      const index = this.lines.findIndex((line) => /^\d{3} /.test(line));
      if (index !== -1) return this.lines.splice(0, index + 1).at(-1) ?? null;
      if (this.closed) return null;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = null;
    }
  }

  send(line: string): void {
    if (!this.closed) this.socket.write(`${line}\r\n`);
  }

  async command(line: string, expected: RegExp): Promise<void> {
    this.send(line);
    const answer = await this.reply();
    assert.match(answer ?? "(closed)", expected, line);
  }

  close(): void {
    this.socket.destroy();
  }
}

test("2,000 idle connections from one address: its first 20 are greeted, the others get a 421 at once; mail from elsewhere is accepted", async () => {
  assert.ok(ownFileLimit() >= 4096, `this test (and a node facing such floods) needs ulimit -n of at least 4096, it has ${ownFileLimit()}`);
  const server = await startServer({ maxClients: 100, maxClientsPerIp: 20 });
  const flood = await startFlood(server.port, ["127.0.0.2"], 2_000);
  try {
    assert.ok(flood.nofile >= 2_100, `the flood client could only open ${flood.nofile} files`);
    const settled = await flood.settled;
    const greeted = Object.entries(settled.firstLines)
      .filter(([line]) => line.startsWith("220 "))
      .reduce((sum, [, n]) => sum + n, 0);
    const refused = Object.entries(settled.firstLines)
      .filter(([line]) => line.startsWith("421 "))
      .reduce((sum, [, n]) => sum + n, 0);
    assert.is(greeted, 20, JSON.stringify(settled));
    assert.is(refused, 1_980, JSON.stringify(settled));
    assert.ok(settled.firstLines[`421 ${SERVER_NAME} too many connections from your address, try again later`]! > 0, JSON.stringify(settled.firstLines));

    // Legitimate mail from another address goes through while the 20 are held.
    const path = await mailFile(["From: ann@remote.test", "To: bob@platform.test", "Subject: through the flood", `Message-ID: <${randomUUID()}@remote.test>`]);
    const sent = await swaks(server.port, ["--data", `@${path}`]);
    assert.is(sent.code, 0, sent.transcript);
    assert.ok((await bobsMessages()).some((m) => m.subject === "through the flood"));
    // The flooding address itself is refused, with a reply that says why.
    const more = await swaks(server.port, ["--local-interface", "127.0.0.2", "--data", `@${path}`]);
    assert.is.not(more.code, 0);
    assert.ok(smtpReplies(more.transcript).includes(`421 ${SERVER_NAME} too many connections from your address, try again later`), more.transcript);
    assert.is((await flood.report()).held, 20, "the 20 are still held");
  } finally {
    await flood.stop();
  }
  // Once its connections are gone, the address is welcome again.
  const path = await mailFile(["From: ann@remote.test", "To: bob@platform.test", "Subject: after the flood", `Message-ID: <${randomUUID()}@remote.test>`]);
  const after = await swaks(server.port, ["--local-interface", "127.0.0.2", "--data", `@${path}`]);
  assert.is(after.code, 0, after.transcript);
  await server.close();
});

test("2,000 idle connections from 200 addresses: at most 100 sessions held, idle ones make room; mail is accepted, a message in progress is never cut", async () => {
  const server = await startServer({ maxClients: 100, maxClientsPerIp: 20 });
  // A sender in the middle of a transaction when the flood comes.
  const slow = new RawSmtp(server.port, "127.0.0.1");
  assert.match((await slow.reply()) ?? "", /^220 /);
  await slow.command("EHLO slow.remote.test", /^250 /);
  await slow.command("MAIL FROM:<slow@remote.test>", /^250 /);
  const sources = Array.from({ length: 200 }, (_, i) => `127.0.1.${i + 1}`);
  const flood = await startFlood(server.port, sources, 10);
  try {
    const settled = await flood.settled;
    const answered = Object.entries(settled.firstLines)
      .filter(([line]) => /^(220|421) /.test(line))
      .reduce((sum, [, n]) => sum + n, 0);
    assert.is(answered, 2_000, `every connection was greeted or refused: ${JSON.stringify(settled.firstLines)}`);
    const report = await flood.report();
    assert.ok(report.held <= 99, `${report.held} flood sessions held beside the slow sender`);
    assert.ok((report.laterLines[`421 4.4.2 ${SERVER_NAME} too many connections, closing idle ones`] ?? 0) > 0, JSON.stringify(report.laterLines));

    // A new sender gets in: an idle session makes room for it.
    const path = await mailFile(["From: ann@remote.test", "To: bob@platform.test", "Subject: past 200 flooders", `Message-ID: <${randomUUID()}@remote.test>`]);
    const sent = await swaks(server.port, ["--data", `@${path}`]);
    assert.is(sent.code, 0, sent.transcript);

    // The sender in a transaction kept its session through it all.
    assert.not.ok(slow.closed, "the session in a transaction was not closed");
    await slow.command("RCPT TO:<bob@platform.test>", /^250 /);
    await slow.command("DATA", /^354 /);
    slow.send(`From: slow@remote.test\r\nTo: bob@platform.test\r\nSubject: slow but legitimate\r\nMessage-ID: <${randomUUID()}@remote.test>\r\n\r\nhi\r\n.`);
    assert.match((await slow.reply()) ?? "(closed)", /^250 2\.6\.0 /);
    const subjects = (await bobsMessages()).map((m) => m.subject);
    assert.ok(subjects.includes("past 200 flooders") && subjects.includes("slow but legitimate"), subjects.join());
  } finally {
    slow.close();
    await flood.stop();
    await server.close();
  }
});

test("a slowloris that trickles its DATA is cut at the transaction timeout; nothing is stored", async () => {
  // The idle timeout alone would never fire: a byte comes every 100 ms.
  const server = await startServer({ idleTimeoutMs: 10_000, transactionTimeoutMs: 1_500 });
  const before = replies.length;
  const stored = (await bobsMessages()).length;
  const client = new RawSmtp(server.port);
  try {
    assert.match((await client.reply()) ?? "", /^220 /);
    await client.command("EHLO trickle.remote.test", /^250 /);
    await client.command("MAIL FROM:<t@remote.test>", /^250 /);
    await client.command("RCPT TO:<bob@platform.test>", /^250 /);
    await client.command("DATA", /^354 /);
    const header = `Subject: ${"x".repeat(1000)}`;
    let sent = 0;
    // At most 30 s of trickling (20 times the timeout): the server must have cut it long before.
    while (!client.closed && sent < 300) {
      client.socket.write(header[sent % header.length] ?? "x");
      sent++;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(client.closed, `the server still listened after ${sent} bytes`);
    assert.is(await client.reply(), `421 4.4.2 ${SERVER_NAME} transaction timeout, closing connection`);
    assert.is(replies.length, before, "no process_inbound");
    assert.is((await bobsMessages()).length, stored);
  } finally {
    client.close();
    await server.close();
  }
});

test("a client that keeps its session alive with NOOPs and never sends a message is cut too", async () => {
  const server = await startServer({ idleTimeoutMs: 10_000, transactionTimeoutMs: 1_500 });
  const noop = new RawSmtp(server.port);
  try {
    assert.match((await noop.reply()) ?? "", /^220 /);
    let last: string | null = null;
    for (let sent = 0; sent < 100; sent++) {
      noop.send("NOOP");
      last = await noop.reply();
      if (last === null || !last.startsWith("250")) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.is(last, `421 4.4.2 ${SERVER_NAME} transaction timeout, closing connection`, "the NOOPs went on");
    assert.is(await noop.reply(), null, "and closed");
  } finally {
    noop.close();
    await server.close();
  }
});

test("a silent client is disconnected at the idle timeout", async () => {
  const server = await startServer({ idleTimeoutMs: 1_000 });
  const silent = new RawSmtp(server.port);
  try {
    assert.match((await silent.reply()) ?? "", /^220 /);
    assert.match((await silent.reply()) ?? "(closed)", /^421 4\.4\.2 Timeout - closing connection/);
    assert.is(await silent.reply(), null, "and closed");
  } finally {
    silent.close();
    await server.close();
  }
});

test("STARTTLS when a certificate is set: offered, used by swaks with the CA, the Received field says ESMTPS; plain SMTP still accepted", async () => {
  const { readFile } = await import("node:fs/promises");
  const server = await startServer({ tls: { key: await readFile(certs.serverKey, "utf8"), cert: await readFile(certs.serverCert, "utf8") } });
  try {
    const secret = `secret-${randomUUID()}`;
    const path = await mailFile(["From: ann@remote.test", "To: bob@platform.test", "Subject: over TLS", `Message-ID: <${randomUUID()}@remote.test>`], secret);
    const sent = await swaks(server.port, ["--tls", "--tls-verify", "--tls-ca-path", certs.ca, "--data", `@${path}`]);
    assert.is(sent.code, 0, sent.transcript);
    assert.ok(
      smtpReplies(sent.transcript).some((line) => /^250[- ]STARTTLS$/.test(line)),
      sent.transcript,
    );
    assert.match(sent.transcript, /TLS started/);
    assert.not.ok(
      sent.transcript.split("\n").some((line) => line.startsWith("<") && line.includes(secret)),
      "nothing after STARTTLS in clear",
    );
    const message = (await bobsMessages()).find((m) => m.subject === "over TLS");
    assert.ok(message);
    const raw = Buffer.from((await f.store.raws.read(message.raw_msg_id ?? "")) ?? []).toString();
    assert.match(raw, /^Received: from client\.remote\.test \(\[127\.0\.0\.1\]\)\r\n\tby mx\.platform\.test \(Caliopen\) with ESMTPS id /);

    const plainPath = await mailFile(["From: ann@remote.test", "To: bob@platform.test", "Subject: in clear", `Message-ID: <${randomUUID()}@remote.test>`]);
    const plain = await swaks(server.port, ["--data", `@${plainPath}`]);
    assert.is(plain.code, 0, plain.transcript);
    const clear = (await bobsMessages()).find((m) => m.subject === "in clear");
    assert.match(Buffer.from((await f.store.raws.read(clear?.raw_msg_id ?? "")) ?? []).toString(), /with ESMTP id /);
  } finally {
    await server.close();
  }
});

test("a 1 MiB To header of about 100,000 addresses: answered 250, stored once, 100 recipients kept and the rest counted", async () => {
  const server = await startServer({ maxSize: 4 * 1024 * 1024 });
  try {
    const addresses: string[] = [];
    for (let size = 0; size < 1024 * 1024; size += addresses.at(-1)!.length + 2) addresses.push(`${addresses.length.toString(36)}@x.io`);
    const lines: string[] = [];
    let line = "To:";
    for (const address of addresses) {
      if (line.length + address.length > 74) {
        lines.push(line);
        line = "";
      }
      line += ` ${address},`;
    }
    lines.push(line.slice(0, -1));
    const messageId = `${randomUUID()}@remote.test`;
    const path = await mailFile(["From: ann@remote.test", ...lines, "Subject: the whole world", `Message-ID: <${messageId}>`]);
    const before = replies.length;
    const sent = await swaks(server.port, ["--data", `@${path}`]);
    assert.is(sent.code, 0, sent.transcript);
    assert.ok(
      smtpReplies(sent.transcript).some((reply) => reply.startsWith("250 2.6.0 ")),
      sent.transcript,
    );
    assert.is(replies.length, before + 1);
    const message = (await bobsMessages()).find((m) => m.external_references.message_id === messageId);
    assert.ok(message);
    assert.is(message.participants.filter((p) => p.type === "To").length, 100);
    assert.equal(message.participants_omitted, { To: addresses.length - 100 });
    assert.ok(addresses.length > 90_000, `${addresses.length} addresses`);
    // The sender retries (it did not see the 250): the same message, not a second one.
    const retry = await swaks(server.port, ["--data", `@${path}`]);
    assert.is(retry.code, 0, retry.transcript);
    assert.is((await bobsMessages()).filter((m) => m.external_references.message_id === messageId).length, 1);
  } finally {
    await server.close();
  }
});

test("a forged first copy of a mail sent over SMTP: one message, the genuine mail kept as a conflicting copy on it; both answered 250", async () => {
  const server = await startServer();
  try {
    const messageId = `${randomUUID()}@bank.example`;
    const headers = ["From: bank@bank.example", "To: bob@platform.test", "Subject: your new IBAN", `Message-ID: <${messageId}>`];
    const forged = await swaks(server.port, ["--local-interface", "127.0.0.66", "--data", `@${await mailFile(headers, "Wire it to XX00 EVIL")}`]);
    assert.is(forged.code, 0, forged.transcript);
    const genuinePath = await mailFile(headers, "Your IBAN is unchanged");
    const before = replies.length;
    const genuine = await swaks(server.port, ["--data", `@${genuinePath}`]);
    assert.is(genuine.code, 0, genuine.transcript);
    assert.ok(
      smtpReplies(genuine.transcript).some((reply) => reply.startsWith("250 2.6.0 ")),
      genuine.transcript,
    );
    const ours = async () => (await bobsMessages()).filter((m) => m.external_references.message_id === messageId);
    const [message, ...others] = await ours();
    assert.ok(message);
    assert.is(others.length, 0, "one message per Message-ID");
    assert.ok(message.body_plain.includes("EVIL"));
    const conflicts = message.message_id_conflicts ?? [];
    assert.is(conflicts.length, 1);
    assert.is(replies[before]?.reply.message_id, message.message_id);
    assert.is(conflicts[0]?.raw_id, replies[before]?.order.message_id);
    const kept = Buffer.from((await f.store.raws.read(conflicts[0]?.raw_id ?? "")) ?? []).toString();
    assert.ok(kept.startsWith("Received: from client.remote.test ") && kept.includes("Your IBAN is unchanged"), kept);
    // The genuine one sent again (the same bytes, another Received line): the same raw, nothing new.
    const again = await swaks(server.port, ["--data", `@${genuinePath}`]);
    assert.is(again.code, 0, again.transcript);
    assert.is(replies.at(-1)?.order.message_id, conflicts[0]?.raw_id, "the raw stored the first time");
    const after = await ours();
    assert.is(after.length, 1);
    assert.equal(after[0]?.message_id_conflicts, conflicts);
  } finally {
    await server.close();
  }
});

test.run();
