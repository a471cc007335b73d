// Files attached to a draft over the API: uploaded as multipart/form-data and streamed into the store,
// listed with their ids, downloaded back, removed; refused past what a mail may carry, on a sent message,
// for someone else's draft, without a file; a 40 MiB upload with bounded memory.
import { request } from "node:http";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { attachmentBudget, MAX_DRAFT_ATTACHMENTS } from "../../actors/messages/draft-attachments.ts";
import type { Message } from "../../actors/store/model.ts";
import { type ApiFixture, startApiFixture } from "../helpers/api-fixture.ts";

type TestUser = { user_id: string; token: string; identity_id: string | null };
const MAX_MAIL = 1024 * 1024;
const test = suite<{ fx: ApiFixture; alice: TestUser; bob: TestUser }>("API: draft attachments");

test.before(async (ctx) => {
  ctx.fx = await startApiFixture({ maxMailBytes: MAX_MAIL });
  ctx.alice = await ctx.fx.user("alice", { email: "alice@caliopen.test" });
  ctx.bob = await ctx.fx.user("bob", { email: "bob@caliopen.test" });
});
test.after(async (ctx) => {
  await ctx.fx.stop();
});

async function draft(fx: ApiFixture, user: TestUser): Promise<Message> {
  const created = await fx.call("POST", "/api/v2/messages", user.token, {
    identity_id: user.identity_id,
    subject: "files",
    body_plain: "see attached",
    participants: [{ type: "To", address: "friend@example.com" }],
  });
  assert.is(created.status, 201, JSON.stringify(created.body));
  return created.body as Message;
}

async function upload(fx: ApiFixture, token: string, messageId: string, name: string, type: string, bytes: Uint8Array) {
  const form = new FormData();
  form.append("file", new Blob([bytes], { type }), name);
  const response = await fetch(`${fx.api.url}/api/v2/messages/${messageId}/attachments`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}` },
    body: form,
  });
  return { status: response.status, body: (await response.json()) as Message & { message?: string } };
}

async function download(fx: ApiFixture, token: string, messageId: string, id: string) {
  const response = await fetch(`${fx.api.url}/api/v2/messages/${messageId}/attachments/${id}`, { headers: { authorization: `Bearer ${token}` } });
  return {
    status: response.status,
    type: response.headers.get("content-type"),
    disposition: response.headers.get("content-disposition"),
    bytes: Buffer.from(await response.arrayBuffer()),
  };
}

test("two files uploaded to a draft are listed with their ids, downloaded back as they were, and one removed (its id never reused)", async ({ fx, alice }) => {
  const message = await draft(fx, alice);
  const pdf = Buffer.concat([Buffer.from("%PDF-1.4\n"), Buffer.alloc(200_000, 3)]);
  const first = await upload(fx, alice.token, message.message_id, "rapport é.pdf", "application/pdf", pdf);
  assert.is(first.status, 201, JSON.stringify(first.body));
  const second = await upload(fx, alice.token, message.message_id, "../../etc/notes.txt", "text/plain", Buffer.from("hello\n"));
  assert.is(second.status, 201, JSON.stringify(second.body));
  assert.equal(
    second.body.attachments.map((a) => [a.attachment_id, a.file_name, a.content_type, a.size]),
    [
      ["0", "rapport é.pdf", "application/pdf", pdf.length],
      ["1", "notes.txt", "text/plain", 6],
    ],
    "a path in the name is dropped",
  );
  const back = await download(fx, alice.token, message.message_id, "0");
  assert.is(back.status, 200);
  assert.is(back.type, "application/pdf");
  assert.match(back.disposition ?? "", /^attachment; filename=.*filename\*=UTF-8''rapport%20%C3%A9\.pdf$/);
  assert.ok(back.bytes.equals(pdf), "the same bytes");

  const contentRaw = second.body.attachments[0]?.content_raw_id ?? "";
  const removed = await fx.call("DELETE", `/api/v2/messages/${message.message_id}/attachments/0`, alice.token);
  assert.is(removed.status, 200, JSON.stringify(removed.body));
  assert.equal(
    (removed.body as Message).attachments.map((a) => a.attachment_id),
    ["1"],
  );
  assert.is((await download(fx, alice.token, message.message_id, "0")).status, 404);
  assert.is(await fx.store.raws.get(contentRaw), null, "its content is removed from the store");
  const third = await upload(fx, alice.token, message.message_id, "again.txt", "text/plain", Buffer.from("again"));
  assert.equal(
    third.body.attachments.map((a) => a.attachment_id),
    ["1", "2"],
  );
  assert.is((await fx.call("DELETE", `/api/v2/messages/${message.message_id}/attachments/7`, alice.token)).status, 404);

  // The draft deleted: its files go with it.
  const files = third.body.attachments.map((a) => a.content_raw_id ?? "");
  assert.is((await fx.call("DELETE", `/api/v2/messages/${message.message_id}`, alice.token)).status, 204);
  assert.equal(await Promise.all(files.map((id) => fx.store.raws.get(id))), [null, null]);
});

test("refused: past what a mail may carry (413), a sent message (409), someone else's draft (404), no file (400), not multipart (415); nothing attached", async ({
  fx,
  alice,
  bob,
}) => {
  const message = await draft(fx, alice);
  const budget = attachmentBudget(MAX_MAIL);
  const tooBig = await upload(fx, alice.token, message.message_id, "big.bin", "application/octet-stream", Buffer.alloc(budget + 1, 1));
  assert.is(tooBig.status, 413, JSON.stringify(tooBig.body));
  const fits = await upload(fx, alice.token, message.message_id, "half.bin", "application/octet-stream", Buffer.alloc(Math.floor(budget / 2) + 1, 1));
  assert.is(fits.status, 201);
  const together = await upload(fx, alice.token, message.message_id, "other-half.bin", "application/octet-stream", Buffer.alloc(Math.floor(budget / 2) + 1, 1));
  assert.is(together.status, 413, "the draft's files together");
  assert.is(await upload(fx, bob.token, message.message_id, "x.txt", "text/plain", Buffer.from("x")).then((r) => r.status), 404);
  const noFile = await fetch(`${fx.api.url}/api/v2/messages/${message.message_id}/attachments`, {
    method: "POST",
    headers: { authorization: `Bearer ${alice.token}` },
    body: new FormData(),
  });
  assert.is(noFile.status, 400);
  const json = await fx.call("POST", `/api/v2/messages/${message.message_id}/attachments`, alice.token, { file: "x" });
  assert.is(json.status, 415, JSON.stringify(json.body));
  assert.equal(
    (await fx.store.messages.get(alice.user_id, message.message_id))?.attachments.map((a) => a.file_name),
    ["half.bin"],
  );

  await fx.store.messages.update(alice.user_id, message.message_id, (current) => ({ ...current, is_draft: false }));
  assert.is((await upload(fx, alice.token, message.message_id, "late.txt", "text/plain", Buffer.from("late"))).status, 409);
  assert.is((await fx.call("DELETE", `/api/v2/messages/${message.message_id}/attachments/0`, alice.token)).status, 409);
  const kept = await download(fx, alice.token, message.message_id, "0");
  assert.is(kept.status, 200, "a sent message's file is still there to download");
});

test(`a draft carries at most ${MAX_DRAFT_ATTACHMENTS} files: the next is refused (409)`, async ({ fx, alice }) => {
  const message = await draft(fx, alice);
  for (let n = 0; n < MAX_DRAFT_ATTACHMENTS; n++) {
    const uploaded = await upload(fx, alice.token, message.message_id, `f${n}.txt`, "text/plain", Buffer.from(`file ${n}`));
    assert.is(uploaded.status, 201);
  }
  const over = await upload(fx, alice.token, message.message_id, "one-more.txt", "text/plain", Buffer.from("x"));
  assert.is(over.status, 409, JSON.stringify(over.body));
  assert.is((await fx.store.messages.get(alice.user_id, message.message_id))?.attachments.length, MAX_DRAFT_ATTACHMENTS);
});

/** Live memory (after a full collection): the heap and the buffers outside it. */
function liveBytes(): number {
  global.gc?.();
  const usage = process.memoryUsage();
  return usage.heapUsed + usage.arrayBuffers;
}

test("a 40 MiB file streams into the store: the API holds a bounded part of it, far from the whole", async () => {
  assert.type(global.gc, "function", "run with --expose-gc (scripts/run-tests.ts does)");
  const MiB = 1024 * 1024;
  const fx = await startApiFixture({ maxMailBytes: 64 * MiB });
  try {
    const user = await fx.user("carol", { email: "carol@caliopen.test" });
    const message = await draft(fx, user);
    const size = 40 * MiB;
    const boundary = "----upload-boundary";
    const url = new URL(`${fx.api.url}/api/v2/messages/${message.message_id}/attachments`);
    const before = liveBytes();
    let peak = 0;
    const upload = request({
      host: url.hostname,
      port: url.port,
      path: url.pathname,
      method: "POST",
      headers: { authorization: `Bearer ${user.token}`, "content-type": `multipart/form-data; boundary=${boundary}` },
    });
    const answered = new Promise<number>((resolve) =>
      upload.on("response", (response) => response.resume().on("end", () => resolve(response.statusCode ?? 0))),
    );
    // Written as the connection takes it (the test holds one MiB at a time), live memory read as it goes.
    const write = (bytes: Buffer) => new Promise<void>((resolve) => (upload.write(bytes) ? resolve() : upload.once("drain", () => resolve())));
    await write(
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`),
    );
    for (let sent = 0; sent < size; sent += MiB) {
      await write(Buffer.alloc(MiB, sent / MiB));
      if ((sent / MiB) % 4 === 3) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        peak = Math.max(peak, liveBytes() - before);
      }
    }
    upload.end(Buffer.from(`\r\n--${boundary}--\r\n`));
    assert.is(await answered, 201);
    console.log(`  40 MiB upload: at most ${(peak / MiB).toFixed(1)} MiB more live memory (heap + buffers) while it came`);
    // Held whole, the file would be live here (up to 40 MiB by the last samples). What is measured
    // besides varies from run to run (0 to 14 MiB seen: buffers on their way to the store, garbage a
    // full collection did not reach yet), and does not grow with the file (10, 20 and 40 MiB uploads
    // measured alike).
    assert.ok(peak < 24 * MiB, `${(peak / MiB).toFixed(1)} MiB held`);
    const stored = (await fx.store.messages.get(user.user_id, message.message_id))?.attachments[0];
    assert.is(stored?.size, size);
    const content = await fx.store.raws.read(stored?.content_raw_id ?? "");
    assert.is(content?.length, size, "stored whole");
  } finally {
    await fx.stop();
  }
});

test.run();
