// The inbound SMTP server driven by swaks, a real SMTP client: what it answers (exit code and the SMTP
// replies in its transcript), what it stores, and which process_inbound orders it makes.

import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { type InboundSmtpServer, startInboundSmtp } from "../../../actors/mail/inbound-smtp-server.ts";
import type { InboundOrder } from "../../../actors/messages/inbound-import.ts";
import type { Identity } from "../../../actors/store/model.ts";
import { createLogger } from "../../../runtime/logger.ts";
import { failure, ok, type Reply } from "../../../runtime/reply.ts";
import { type StoreFixture, startStore } from "../store/fixture.ts";

const MAX_SIZE = 20_000;
const MAX_RECIPIENTS = 3;
const SERVER_NAME = "mx.platform.test";

let f: StoreFixture;
let server: InboundSmtpServer;
let dir: string;
let logs = "";
const calls: InboundOrder[] = [];
/** What process_inbound answers; tests change it and put it back. */
let answer: (order: InboundOrder) => Promise<Reply> = async (order) => ok("imported", { message_id: randomUUID(), discussion_id: order.user_id });

let bob: Identity;
let carol: Identity;
let dave: Identity;

test.before(async () => {
  f = await startStore();
  dir = await mkdtemp(join(tmpdir(), "caliopen-inbound-smtp-"));
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs += chunk.toString();
      done();
    },
  });
  server = await startInboundSmtp(
    {
      store: f.store,
      importRaw: async (order) => {
        calls.push(order);
        return answer(order);
      },
      logger: createLogger({ level: "debug", destination }),
    },
    { host: "127.0.0.1", port: 0, maxSize: MAX_SIZE, maxRecipients: MAX_RECIPIENTS, serverName: SERVER_NAME },
  );
  const local = (identifier: string) =>
    f.store.identities.create({ user_id: randomUUID(), type: "local", protocol: "email", identifier, display_name: identifier });
  [bob, carol, dave] = await Promise.all([local("bob@platform.test"), local("carol@platform.test"), local("dave@platform.test")]);
  await f.store.identities.create({ user_id: randomUUID(), type: "local", protocol: "email", identifier: "sleepy@platform.test", status: "inactive" });
  // A remote mail account (protocol "email", as byIdentifier looks up): its mail comes by IMAP, not here.
  await f.store.identities.create({
    user_id: randomUUID(),
    type: "remote",
    protocol: "email",
    identifier: "remote@elsewhere.test",
    infos: { inserver: "127.0.0.1:1", outserver: "127.0.0.1:1" },
    credentials: { username: "u", password: "p" },
  });
});

test.after(async () => {
  await server.close();
  await f.nats.stop();
  await rm(dir, { recursive: true, force: true });
});

interface SwaksResult {
  code: number | null;
  transcript: string;
}

function swaks(args: string[]): Promise<SwaksResult> {
  return swaksTo(server.port, args);
}

function swaksTo(port: number, args: string[]): Promise<SwaksResult> {
  return new Promise((resolve, reject) => {
    const child = spawn("swaks", ["--server", "127.0.0.1", "--port", String(port), "--helo", "client.remote.test", "--suppress-data", ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let transcript = "";
    child.stdout.on("data", (chunk: Buffer) => (transcript += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (transcript += chunk.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, transcript });
    });
  });
}

/** A message file of its own (unique Message-ID and body), CRLF lines. */
async function messageFile(body = `hello ${randomUUID()}`, extraHeaders: string[] = []): Promise<{ path: string; bytes: Buffer }> {
  const text = [
    "From: Ann <a@remote.test>",
    "To: bob@platform.test",
    `Subject: inbound ${randomUUID()}`,
    `Message-ID: <${randomUUID()}@remote.test>`,
    "Date: Tue, 05 Mar 2024 10:20:30 +0000",
    ...extraHeaders,
    "",
    body,
    "",
  ].join("\r\n");
  const path = join(dir, `${randomUUID()}.eml`);
  await writeFile(path, text);
  return { path, bytes: Buffer.from(text) };
}

const ordersSince = (start: number) => calls.slice(start);
/** The SMTP replies in a swaks transcript (lines it received: "<-  250 ..." or "<** 550 ..."). */
const replies = (transcript: string) =>
  transcript
    .split("\n")
    .filter((line) => /^<[-*~]/.test(line))
    .map((line) => line.replace(/^<[-*~]+\s*/, ""));

test("EHLO: the server name in the greeting, SIZE advertised, neither AUTH nor STARTTLS (no certificate set)", async () => {
  const result = await swaks(["--from", "a@remote.test", "--to", "bob@platform.test", "--quit-after", "EHLO"]);
  assert.is(result.code, 0, result.transcript);
  const lines = replies(result.transcript);
  assert.match(lines[0] ?? "", new RegExp(`^220 ${SERVER_NAME.replace(/\./g, "\\.")} ESMTP`));
  assert.ok(
    lines.some((line) => line === `250-SIZE ${MAX_SIZE}` || line === `250 SIZE ${MAX_SIZE}`),
    result.transcript,
  );
  assert.ok(lines.some((line) => /ENHANCEDSTATUSCODES/.test(line)));
  assert.not.ok(
    lines.some((line) => /AUTH|STARTTLS/.test(line)),
    result.transcript,
  );
});

test("a message to a local identity: 250, stored once as sent under a Received line, one process_inbound order with the raw id", async () => {
  const start = calls.length;
  const { path, bytes } = await messageFile("the secret body text 7f3a");
  const before = Math.floor(Date.now() / 1000) * 1000;
  const result = await swaks(["--from", "a@remote.test", "--to", "bob@platform.test", "--data", `@${path}`]);
  assert.is(result.code, 0, result.transcript);
  const accepted = replies(result.transcript).find((line) => line.startsWith("250 2.6.0"));
  assert.ok(accepted, result.transcript);
  const orders = ordersSince(start);
  assert.is(orders.length, 1);
  assert.equal(orders[0], { message_id: orders[0]!.message_id, remote_id: bob.identity_id, user_id: bob.user_id });
  assert.ok(accepted.includes(orders[0]!.message_id), "the 250 names the raw id");
  const raw = await f.store.raws.get(orders[0]!.message_id);
  assert.ok(raw);
  assert.is(raw.user_id, null);
  assert.is(raw.delivered, true, "marked delivered once every recipient was processed");
  const stored = Buffer.from((await f.store.raws.read(raw.raw_msg_id)) ?? []).toString("utf8");
  // RFC 5321 §4.4: from (HELO name, address), by, with, id, for (the one recipient), date.
  const trace =
    /^Received: from client\.remote\.test \(\[127\.0\.0\.1\]\)\r\n\tby mx\.platform\.test \(Caliopen\) with ESMTP id ([0-9a-v]+)\r\n\tfor <bob@platform\.test>;\r\n\t([^\r\n]+)\r\n/.exec(
      stored,
    );
  assert.ok(trace, stored.slice(0, 300));
  const at = Date.parse(trace[2]!);
  assert.ok(/^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000$/.test(trace[2]!) && at >= before && at <= Date.now(), trace[2]);
  // Then the message as sent (swaks ends the DATA with an empty line of its own before the final dot).
  assert.is(stored.slice(trace[0].length), `${bytes.toString("utf8")}\r\n`, "the message follows as sent");
  assert.match(logs, new RegExp(raw.raw_msg_id), "the message is logged with its raw id");
  assert.not.ok(logs.includes("the secret body text 7f3a"), "never its body");
});

test("two local recipients (different users): one raw, two orders, in parallel", async () => {
  const start = calls.length;
  let running = 0;
  let overlapped = false;
  const previous = answer;
  answer = async (order) => {
    running++;
    if (running > 1) overlapped = true;
    await new Promise((resolve) => setTimeout(resolve, 100));
    running--;
    return previous(order);
  };
  try {
    const { path } = await messageFile();
    const result = await swaks(["--from", "a@remote.test", "--to", "bob@platform.test,Carol@Platform.test", "--data", `@${path}`]);
    assert.is(result.code, 0, result.transcript);
    const orders = ordersSince(start);
    assert.is(orders.length, 2);
    assert.is(orders[0]!.message_id, orders[1]!.message_id, "one raw for both");
    assert.equal(orders.map((o) => o.remote_id).sort(), [bob.identity_id, carol.identity_id].sort());
    assert.equal(orders.map((o) => o.user_id).sort(), [bob.user_id, carol.user_id].sort());
    assert.ok(overlapped, "the recipients were processed in parallel");
  } finally {
    answer = previous;
  }
});

test("an unknown local address is refused at RCPT with 550 5.1.1; nothing stored or ordered", async () => {
  const start = calls.length;
  const result = await swaks(["--from", "a@remote.test", "--to", "nobody@platform.test", "--body", "x"]);
  assert.is(result.code, 24, result.transcript);
  assert.ok(replies(result.transcript).includes("550 5.1.1 <nobody@platform.test>: no such user here"), result.transcript);
  assert.is(ordersSince(start).length, 0);
});

test("no open relay: an external recipient, a remote identity's address and an inactive identity are all refused", async () => {
  const start = calls.length;
  for (const to of ["someone@gmail.test", "remote@elsewhere.test", "sleepy@platform.test"]) {
    const result = await swaks(["--from", "a@remote.test", "--to", to, "--body", "x"]);
    assert.is(result.code, 24, `${to}: ${result.transcript}`);
    assert.ok(replies(result.transcript).includes(`550 5.1.1 <${to}>: no such user here`), result.transcript);
  }
  assert.is(ordersSince(start).length, 0);
});

test("a refused recipient among accepted ones: the message goes to the accepted ones only", async () => {
  const start = calls.length;
  const { path } = await messageFile();
  const result = await swaks(["--from", "a@remote.test", "--to", "stranger@gmail.test,dave@platform.test", "--data", `@${path}`]);
  assert.is(result.code, 0, result.transcript);
  assert.ok(replies(result.transcript).includes("550 5.1.1 <stranger@gmail.test>: no such user here"));
  assert.equal(
    ordersSince(start).map((o) => o.remote_id),
    [dave.identity_id],
  );
});

test("too many recipients: 452 4.5.3 past the limit, the accepted ones get the message", async () => {
  const start = calls.length;
  const { path } = await messageFile();
  // Four distinct local addresses would be needed to pass the limit with valid ones: the fourth RCPT
  // is refused for the count before its address is even looked up.
  const result = await swaks([
    "--from",
    "a@remote.test",
    "--to",
    "bob@platform.test,carol@platform.test,dave@platform.test,nobody@platform.test",
    "--data",
    `@${path}`,
  ]);
  assert.is(result.code, 0, result.transcript);
  const lines = replies(result.transcript);
  assert.ok(
    lines.some((line) => /^452 4\.5\.3 .*too many recipients/i.test(line)),
    result.transcript,
  );
  assert.not.ok(
    lines.some((line) => line.includes("nobody@platform.test")),
    "the address past the limit was never looked up",
  );
  assert.is(ordersSince(start).length, MAX_RECIPIENTS);
});

test("a message over the size limit: 552 5.3.4, nothing stored or ordered", async () => {
  const start = calls.length;
  const { path } = await messageFile(`${"x".repeat(70)}\r\n${(`${"y".repeat(76)}\r\n`).repeat(Math.ceil(MAX_SIZE / 78) + 10)}`);
  const result = await swaks(["--from", "a@remote.test", "--to", "bob@platform.test", "--data", `@${path}`]);
  assert.is(result.code, 26, result.transcript);
  assert.ok(
    replies(result.transcript).some((line) => line.startsWith("552 5.3.4")),
    result.transcript,
  );
  assert.is(ordersSince(start).length, 0);
});

test("process_inbound failing for one recipient: 451 4.3.0; an identical retry reuses the raw and asks again", async () => {
  const start = calls.length;
  const previous = answer;
  answer = async (order) => (order.remote_id === carol.identity_id ? failure("store unavailable") : previous(order));
  try {
    const { path } = await messageFile();
    const first = await swaks(["--from", "a@remote.test", "--to", "bob@platform.test,carol@platform.test", "--data", `@${path}`]);
    assert.is(first.code, 26, first.transcript);
    assert.ok(replies(first.transcript).includes("451 4.3.0 temporary failure, please retry"), first.transcript);
    const firstOrders = ordersSince(start);
    assert.is(firstOrders.length, 2, "both recipients were tried, each with its own outcome");
    const rawId = firstOrders[0]!.message_id;
    assert.is((await f.store.raws.get(rawId))?.delivered, false, "not delivered while a recipient failed");

    answer = previous;
    const again = calls.length;
    const retry = await swaks(["--from", "a@remote.test", "--to", "bob@platform.test,carol@platform.test", "--data", `@${path}`]);
    assert.is(retry.code, 0, retry.transcript);
    const retryOrders = ordersSince(again);
    assert.is(retryOrders.length, 2, "process_inbound asked again for every recipient");
    assert.ok(
      retryOrders.every((o) => o.message_id === rawId),
      "the same raw id (stored once)",
    );
    assert.is((await f.store.raws.get(rawId))?.delivered, true);
  } finally {
    answer = previous;
  }
});

test("process_inbound throwing (e.g. a request timeout) is a 451 too", async () => {
  const previous = answer;
  answer = async () => {
    throw new Error("request timed out");
  };
  try {
    const { path } = await messageFile();
    const result = await swaks(["--from", "a@remote.test", "--to", "bob@platform.test", "--data", `@${path}`]);
    assert.is(result.code, 26, result.transcript);
    assert.ok(replies(result.transcript).includes("451 4.3.0 temporary failure, please retry"), result.transcript);
    assert.match(logs, /request timed out/, "the reason is logged");
  } finally {
    answer = previous;
  }
});

test("a store failure while storing is a 451, not a crash; the server keeps serving", async () => {
  const original = f.store.raws.putOnce;
  f.store.raws.putOnce = async () => {
    throw new Error("object store down");
  };
  try {
    const { path } = await messageFile();
    const result = await swaks(["--from", "a@remote.test", "--to", "bob@platform.test", "--data", `@${path}`]);
    assert.is(result.code, 26, result.transcript);
    assert.ok(replies(result.transcript).includes("451 4.3.0 temporary failure, please retry"), result.transcript);
  } finally {
    f.store.raws.putOnce = original;
  }
  const { path } = await messageFile();
  const after = await swaks(["--from", "a@remote.test", "--to", "bob@platform.test", "--data", `@${path}`]);
  assert.is(after.code, 0, after.transcript);
});

test("the same bytes for two recipients at once: one raw without a for clause; for another recipient later: another raw naming only it", async () => {
  const start = calls.length;
  const { path } = await messageFile();
  const both = await swaks(["--from", "a@remote.test", "--to", "bob@platform.test,carol@platform.test", "--data", `@${path}`]);
  assert.is(both.code, 0, both.transcript);
  const [first] = ordersSince(start);
  const shared = Buffer.from((await f.store.raws.read(first!.message_id)) ?? []).toString();
  assert.match(shared, /^Received: from client\.remote\.test \(\[127\.0\.0\.1\]\)\r\n\tby mx\.platform\.test \(Caliopen\) with ESMTP id \w+;\r\n\t/);
  assert.not.ok(/for <|bob@platform\.test|carol@platform\.test>/.test(shared.slice(0, shared.indexOf("From:"))), "no recipient named in the trace");
  // The sender splits another copy off to dave (a Bcc, say): the raw read by dave names dave alone.
  const later = calls.length;
  const alone = await swaks(["--from", "a@remote.test", "--to", "dave@platform.test", "--data", `@${path}`]);
  assert.is(alone.code, 0, alone.transcript);
  const [daves] = ordersSince(later);
  assert.is.not(daves!.message_id, first!.message_id);
  const davesRaw = Buffer.from((await f.store.raws.read(daves!.message_id)) ?? []).toString();
  assert.match(davesRaw, /\tfor <dave@platform\.test>;/);
});

test("a header block the parser could never read: 554 5.6.0 for good, nothing stored or ordered", async () => {
  const start = calls.length;
  const big = await startInboundSmtp(
    {
      store: f.store,
      importRaw: async (order) => {
        calls.push(order);
        return ok("imported", { message_id: randomUUID(), discussion_id: "d" });
      },
      logger: createLogger({ level: "silent" }),
    },
    { host: "127.0.0.1", port: 0, maxSize: 8 * 1024 * 1024, maxRecipients: 3, serverName: SERVER_NAME },
  );
  try {
    // 40,000 short lines: 600 KB of bytes, but the parser counts each line for 64 bytes, 2.5 MB.
    const lines = Array.from({ length: 40_000 }, (_, i) => `X-${i}: y`).join("\r\n");
    const path = join(dir, `${randomUUID()}.eml`);
    await writeFile(path, `From: a@remote.test\r\nTo: bob@platform.test\r\n${lines}\r\nSubject: heavy\r\n\r\nbody\r\n`);
    const result = await swaksTo(big.port, ["--from", "a@remote.test", "--to", "bob@platform.test", "--data", `@${path}`]);
    assert.is(result.code, 26, result.transcript);
    assert.ok(replies(result.transcript).includes("554 5.6.0 header block over 2097152 bytes"), result.transcript);
    assert.is(ordersSince(start).length, 0);
    // A block just under the limit goes through.
    const fewer = Array.from({ length: 30_000 }, (_, i) => `X-${i}: y`).join("\r\n");
    await writeFile(path, `From: a@remote.test\r\nTo: bob@platform.test\r\n${fewer}\r\nSubject: heavy\r\n\r\nbody\r\n`);
    const under = await swaksTo(big.port, ["--from", "a@remote.test", "--to", "bob@platform.test", "--data", `@${path}`]);
    assert.is(under.code, 0, under.transcript);
    assert.is(ordersSince(start).length, 1);
  } finally {
    await big.close();
  }
});

test("a null sender (a bounce) is accepted; two different messages get two raws", async () => {
  const start = calls.length;
  const a = await messageFile();
  const first = await swaks(["--from", "a@remote.test", "--to", "bob@platform.test", "--data", `@${a.path}`]);
  const bounce = await swaks(["--from", "<>", "--to", "carol@platform.test", "--body", "bounce"]);
  assert.is(first.code, 0, first.transcript);
  assert.is(bounce.code, 0, bounce.transcript);
  const orders = ordersSince(start);
  assert.is(orders.length, 2);
  assert.is.not(orders[0]!.message_id, orders[1]!.message_id);
});

test.run();
