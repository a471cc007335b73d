// The content hash of a mail: the bytes after its leading trace fields, whatever the chunks it comes in.

import { createHash } from "node:crypto";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { MailContentHash, mailContentHash } from "../../../actors/mail/mail-content-hash.ts";

const sha256 = (text: string) => createHash("sha256").update(text, "latin1").digest("hex");

/** The hash of `text` fed in chunks of `size` bytes. */
function hashIn(text: string, size: number): string {
  const bytes = Buffer.from(text, "latin1");
  const hasher = new MailContentHash();
  for (let i = 0; i < bytes.length; i += size) hasher.update(bytes.subarray(i, i + size));
  return hasher.digest();
}

const content = "From: a@example.org\r\nTo: b@example.org\r\nSubject: s\r\n\r\nbody\r\n";

test("leading trace fields (folded too, any case, CRLF or LF) are left out, in chunks of any size", () => {
  const traced = [
    "Return-Path: <a@example.org>\r\n",
    "Received: from mx.example.org ([192.0.2.1])\r\n\tby mx.caliopen.test with ESMTPS id abc\r\n\tfor <b@example.org>; Mon, 03 Jun 2024 09:00:05 +0000\r\n",
    "X-Fetched-Imap-Flags: \\Seen\r\n",
    "DELIVERED-TO: b@example.org\r\n",
    "ARC-Seal: i=1; a=rsa-sha256; cv=none\r\n",
    "Authentication-Results: mx.example.org; spf=pass\r\n",
    "X-Received: by 2002:a05 with SMTP id x\r\n",
  ].join("");
  for (const size of [1, 2, 3, 7, 64, 100_000]) {
    assert.is(hashIn(traced + content, size), sha256(content), `chunks of ${size}`);
  }
  const lf = content.replace(/\r\n/g, "\n");
  assert.is(hashIn(`Received: from x\n by y\n${lf}`, 5), sha256(lf));
});

test("everything from the first other field is content: a trace field below it, the blank line, a body", () => {
  const below = "Received: from x\r\nFrom: a@example.org\r\nReceived: from y\r\n\r\nbody\r\n";
  assert.is(hashIn(below, 3), sha256("From: a@example.org\r\nReceived: from y\r\n\r\nbody\r\n"));
  assert.is(hashIn("Received: from x\r\n\r\nbody", 4), sha256("\r\nbody"));
  assert.is(hashIn("no header at all", 2), sha256("no header at all"));
  assert.is(hashIn(" Received: indented is no field\r\n", 2), sha256(" Received: indented is no field\r\n"));
  assert.is(hashIn("Receivedx: close but not the name\r\n", 1), sha256("Receivedx: close but not the name\r\n"));
  assert.is(hashIn("", 1), sha256(""));
  assert.is(hashIn("Received: only trace\r\n", 1), sha256(""));
  // A field name longer than any trace field's is content at once, however long it is.
  const long = `X-${"a".repeat(5_000)}: v\r\n\r\nb`;
  assert.is(hashIn(long, 10), sha256(long));
});

test("mailContentHash reads a stream to the end", async () => {
  async function* chunks() {
    yield Buffer.from("Received: from x\r\n");
    yield Buffer.from(content);
  }
  assert.is(await mailContentHash(chunks()), sha256(content));
});

test.run();
