// A message's raw and its attachments over the API: streamed, decoded, with their content type and
// file name, always as downloads; within the user's own messages only; a 20 MiB attachment with bounded
// memory. The mails are imported as the inbound processor imports them (real parser, real store).
import { createHash } from "node:crypto";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { processInboundEmail } from "../../actors/mail/inbound-email.ts";
import { sleep } from "../../scripts/local-servers/wait.ts";
import { type ApiFixture, startApiFixture } from "../helpers/api-fixture.ts";

interface Account {
  user_id: string;
  token: string;
  identity_id: string;
}

const test = suite<{ f: ApiFixture; alice: Account; eve: Account }>("message content");

const BOUNDARY = "b0undary";
const mail = (parts: string[]) =>
  [
    "From: Bob <bob@example.org>",
    "To: Alice <alice@caliopen.test>",
    "Subject: files",
    "Message-ID: <files-1@example.org>",
    "Date: Mon, 30 Nov 2026 10:00:00 +0000",
    "MIME-Version: 1.0",
    `Content-Type: multipart/mixed; boundary="${BOUNDARY}"`,
    "",
    `--${BOUNDARY}`,
    "Content-Type: text/plain; charset=utf-8",
    "",
    "Two files.",
    ...parts.flatMap((part) => [`--${BOUNDARY}`, part]),
    `--${BOUNDARY}--`,
    "",
  ].join("\r\n");

const REPORT = "%PDF-1.4 not really a pdf, but bytes all the same\n";
const PAGE = "<html><script>alert(document.cookie)</script></html>";
const SMALL_MAIL = mail([
  [
    "Content-Type: application/pdf",
    'Content-Disposition: attachment; filename="rapport annuel é.pdf"',
    "Content-Transfer-Encoding: base64",
    "",
    Buffer.from(REPORT).toString("base64"),
  ].join("\r\n"),
  ["Content-Type: text/html", 'Content-Disposition: attachment; filename="page.html"', "", PAGE].join("\r\n"),
]);

async function importMail(f: ApiFixture, account: Account, content: Uint8Array | AsyncIterable<Uint8Array>): Promise<string> {
  const raw = await f.store.raws.put(null, content);
  const reply = await processInboundEmail(f.store, { message_id: raw.raw_msg_id, remote_id: account.identity_id, user_id: account.user_id });
  assert.type(reply.message_id, "string", JSON.stringify(reply));
  return reply.message_id as string;
}

async function get(f: ApiFixture, token: string, path: string): Promise<Response> {
  return fetch(`${f.api.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
}

test.before(async (ctx) => {
  ctx.f = await startApiFixture();
  const alice = await ctx.f.user("alice", { email: "alice@caliopen.test" });
  const eve = await ctx.f.user("eve", { email: "eve@caliopen.test" });
  ctx.alice = { ...alice, identity_id: alice.identity_id ?? "" };
  ctx.eve = { ...eve, identity_id: eve.identity_id ?? "" };
});
test.after(async (ctx) => ctx.f.stop());

test("each attachment has an id, and downloads decoded with its type and file name, as a download", async ({ f, alice }) => {
  const messageId = await importMail(f, alice, new TextEncoder().encode(SMALL_MAIL));
  const message = await f.call("GET", `/api/v2/messages/${messageId}`, alice.token);
  assert.equal(
    message.body.attachments.map((a: { attachment_id: string; file_name: string }) => [a.attachment_id, a.file_name]),
    [
      ["0", "rapport annuel é.pdf"],
      ["1", "page.html"],
    ],
  );
  const pdf = await get(f, alice.token, `/api/v2/messages/${messageId}/attachments/0`);
  assert.is(pdf.status, 200);
  assert.is(pdf.headers.get("content-type"), "application/pdf");
  assert.match(
    pdf.headers.get("content-disposition") ?? "",
    /^attachment; filename="rapport annuel \?\.pdf"; filename\*=UTF-8''rapport%20annuel%20%C3%A9\.pdf$/,
  );
  assert.is(await pdf.text(), REPORT);

  const html = await get(f, alice.token, `/api/v2/messages/${messageId}/attachments/1`);
  assert.is(html.status, 200);
  assert.match(html.headers.get("content-disposition") ?? "", /^attachment;/, "never shown inline on the API's origin");
  assert.is(html.headers.get("x-content-type-options"), "nosniff");
  assert.match(html.headers.get("content-security-policy") ?? "", /sandbox/);
  assert.is(await html.text(), PAGE);

  const missing = await get(f, alice.token, `/api/v2/messages/${messageId}/attachments/2`);
  assert.is(missing.status, 404);
  assert.is((await get(f, alice.token, `/api/v2/messages/${messageId}/attachments/01`)).status, 400, "ids are plain numbers");
  assert.is((await get(f, alice.token, `/api/v2/messages/${messageId}/attachments/..%2Fraw`)).status, 400);
});

test("a file name crafted to break the response's headers (encoded CR LF) is served harmless", async ({ f, alice }) => {
  const crafted = mail([
    ["Content-Type: text/plain", "Content-Disposition: attachment; filename*=UTF-8''evil%0D%0ASet-Cookie%3A%20session%3Dstolen.txt", "", "payload"].join(
      "\r\n",
    ),
  ]).replace("files-1@", "files-crafted@");
  const messageId = await importMail(f, alice, new TextEncoder().encode(crafted));
  const response = await get(f, alice.token, `/api/v2/messages/${messageId}/attachments/0`);
  assert.is(response.status, 200);
  assert.is(response.headers.get("set-cookie"), null);
  assert.not.match(response.headers.get("content-disposition") ?? "", /[\r\n]/);
  assert.match(response.headers.get("content-disposition") ?? "", /^attachment; filename="evilSet-Cookie: session=stolen\.txt"/);
  assert.is(await response.text(), "payload");
});

test("the raw streams as message/rfc822, byte for byte", async ({ f, alice }) => {
  const messageId = await importMail(f, alice, new TextEncoder().encode(SMALL_MAIL.replace("files-1@", "files-2@")));
  const raw = await get(f, alice.token, `/api/v2/messages/${messageId}/raw`);
  assert.is(raw.status, 200);
  assert.is(raw.headers.get("content-type"), "message/rfc822");
  assert.match(raw.headers.get("content-disposition") ?? "", /^attachment; filename=".+\.eml"$/);
  assert.is(await raw.text(), SMALL_MAIL.replace("files-1@", "files-2@"));
});

test("another user's message, its raw and its attachments are not found", async ({ f, alice, eve }) => {
  const messageId = await importMail(f, alice, new TextEncoder().encode(SMALL_MAIL.replace("files-1@", "files-3@")));
  for (const path of [`/api/v2/messages/${messageId}/raw`, `/api/v2/messages/${messageId}/attachments/0`]) {
    const response = await get(f, eve.token, path);
    assert.is(response.status, 404, path);
    assert.not.match(await response.text(), REPORT);
  }
  assert.is((await get(f, eve.token, `/api/v2/messages/${messageId}/raw`.replace(messageId, "not-a-uuid"))).status, 400);
});

test("a draft has no raw: 404", async ({ f, alice }) => {
  const draft = await f.call("POST", "/api/v2/messages", alice.token, { identity_id: alice.identity_id, subject: "draft", body_plain: "x" });
  assert.is(draft.status, 201);
  assert.is((await get(f, alice.token, `/api/v2/messages/${draft.body.message_id}/raw`)).status, 404);
});

/** Imports a mail carrying `size` deterministic bytes as its one attachment; returns the message id and the bytes' sha256. */
async function importBigMail(f: ApiFixture, account: Account, size: number, tag: string): Promise<{ messageId: string; sha256: string }> {
  const expected = createHash("sha256");
  async function* bigMail(): AsyncGenerator<Uint8Array> {
    const [head, tail] = mail([
      [
        "Content-Type: application/octet-stream",
        'Content-Disposition: attachment; filename="big.bin"',
        "Content-Transfer-Encoding: base64",
        "",
        "@@BODY@@",
      ].join("\r\n"),
    ])
      .replace("files-1@", `files-${tag}@`)
      .split("@@BODY@@");
    yield new TextEncoder().encode(head);
    const block = 57 * 1024; // 57 bytes make one 76-column base64 line
    for (let offset = 0; offset < size; offset += block) {
      const bytes = Buffer.alloc(Math.min(block, size - offset));
      for (let i = 0; i < bytes.length; i++) bytes[i] = ((offset + i) * 2654435761) >>> 24;
      expected.update(bytes);
      const lines = bytes.toString("base64").match(/.{1,76}/g) ?? [];
      yield new TextEncoder().encode(`${lines.join("\r\n")}\r\n`);
    }
    yield new TextEncoder().encode(tail ?? "");
  }
  const messageId = await importMail(f, account, bigMail());
  return { messageId, sha256: expected.digest("hex") };
}

/** Live memory (after a full collection): the heap and the buffers outside it. */
function liveBytes(): number {
  global.gc?.();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

test("a 20 MiB attachment downloads whole and intact; a reader that pauses holds the server back (nothing held whole)", async ({ f, alice }) => {
  assert.type(global.gc, "function", "run with --expose-gc (scripts/run-tests.ts does)");
  const MiB = 1024 * 1024;
  const big = await importBigMail(f, alice, 20 * MiB, "big");
  const message = await f.call("GET", `/api/v2/messages/${big.messageId}`, alice.token);
  assert.is(message.body.attachments[0].size, 20 * MiB);

  const before = liveBytes();
  const response = await get(f, alice.token, `/api/v2/messages/${big.messageId}/attachments/0`);
  assert.is(response.status, 200);
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const received = createHash("sha256");
  let bytes = 0;
  let heldWhilePaused = Number.NaN;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    received.update(value);
    bytes += value.length;
    if (Number.isNaN(heldWhilePaused) && bytes >= MiB) {
      // The reader stops a while: the API, the parser and the raw's reading must wait for it, not read ahead.
      await sleep(1_000);
      heldWhilePaused = liveBytes() - before;
    }
  }
  assert.is(bytes, 20 * MiB);
  assert.is(received.digest("hex"), big.sha256, "the attachment intact");
  process.stdout.write(`    a paused 20 MiB download held ${(heldWhilePaused / MiB).toFixed(1)} MiB live in this process (API and client)\n`);
  // Held whole, the attachment (20 MiB) or its mail (27 MiB) would be live here; what else this process
  // holds at that moment (caches, buffers of other work in a loaded run) moves by a few MiB.
  assert.ok(heldWhilePaused < 12 * MiB, `${(heldWhilePaused / MiB).toFixed(1)} MiB live while the reader paused`);
});

test.run();
