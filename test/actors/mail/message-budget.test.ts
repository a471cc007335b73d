// A message document within its size, whatever JSON makes of its text.

import { randomUUID } from "node:crypto";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { cut, fitDocument, MAX_DOCUMENT_BYTES } from "../../../actors/mail/message-budget.ts";
import type { Participant } from "../../../actors/store/model.ts";
import { newMessage } from "../store/fixture.ts";

const size = (value: unknown) => Buffer.byteLength(JSON.stringify(value));

test("a message that fits is left as it is", () => {
  const message = newMessage(randomUUID(), { body_plain: "x".repeat(10_000) });
  const fitted = fitDocument(message);
  assert.is(fitted.message, message);
  assert.is(fitted.bodyCut, false);
});

test("bodies are cut by their encoded size (control characters, quotes, emoji), the HTML first", () => {
  const html = "\u0001".repeat(200_000);
  const plain = '"\\😀é'.repeat(60_000);
  const message = newMessage(randomUUID(), { body_html: html, body_plain: plain });
  assert.ok(size(message) > 1024 * 1024);
  const { message: fitted, bodyCut } = fitDocument(message);
  assert.ok(bodyCut);
  const bytes = size(fitted);
  assert.ok(bytes <= MAX_DOCUMENT_BYTES && bytes > MAX_DOCUMENT_BYTES - 64, `${bytes} bytes`);
  assert.ok(fitted.body_html.length > 0 && fitted.body_html.length < html.length && html.startsWith(fitted.body_html), "the HTML is cut");
  assert.ok(fitted.body_plain === plain, "the plain body, once the HTML freed enough, is whole");

  // An HTML body too small to free enough: it goes, and the plain one is cut.
  const second = fitDocument(newMessage(randomUUID(), { body_html: "<p>hi</p>", body_plain: plain.repeat(3) })).message;
  assert.is(second.body_html, "");
  assert.ok(second.body_plain.length > 0 && plain.repeat(3).startsWith(second.body_plain));
  assert.ok(size(second) <= MAX_DOCUMENT_BYTES);
  assert.not.ok(/[\uD800-\uDBFF]$/.test(second.body_plain), "never half an emoji");
});

test("past the bodies: the farthest ancestors, then participants from the last (never the first From), then attachments, counted", () => {
  const participant = (type: Participant["type"], i: number): Participant => ({
    type,
    address: `p${i}@example.org`,
    label: "L".repeat(2_000),
    protocol: "email",
    contact_ids: [],
  });
  const message = newMessage(randomUUID(), {
    body_plain: "",
    participants: [participant("From", 0), ...Array.from({ length: 400 }, (_, i) => participant(i % 2 ? "To" : "Cc", i + 1))],
    attachments: Array.from({ length: 2_000 }, (_, i) => ({
      content_type: "application/pdf",
      file_name: `${i}-${"f".repeat(250)}`,
      size: 1,
      is_inline: false,
    })),
    external_references: { message_id: "m", parent_id: "", ancestors_ids: Array.from({ length: 300 }, (_, i) => `a${i}-${"x".repeat(900)}`) },
  });
  const { message: fitted } = fitDocument(message, 200_000);
  assert.ok(size(fitted) <= 200_000, `${size(fitted)} bytes`);
  assert.equal(fitted.external_references.ancestors_ids, [], "ancestors first");
  assert.is(fitted.participants[0]?.type, "From");
  assert.is(fitted.participants[0]?.address, "p0@example.org");
  const dropped = message.participants.slice(fitted.participants.length);
  const counted = fitted.participants_omitted ?? {};
  assert.is((counted.To ?? 0) + (counted.Cc ?? 0), dropped.length);
  assert.is(counted.To, dropped.filter((p) => p.type === "To").length);
  assert.is(fitted.attachments.length + (fitted.attachments_omitted ?? 0), 2_000);
});

test("cut never splits a surrogate pair", () => {
  assert.is(cut("ab😀", 3), "ab");
  assert.is(cut("ab😀", 4), "ab😀");
  assert.is(cut("abc", 10), "abc");
});

test.run();
