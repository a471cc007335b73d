// The MIME of a draft, read back with mailparser: headers, threading, Bcc kept out of the headers,
// and the body structure.

import { randomUUID } from "node:crypto";
import { type AddressObject, type ParsedMail, simpleParser } from "mailparser";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { bareMessageId, buildDraftMime, draftMessageId, replyThreading } from "../../../actors/mail/draft-mime.ts";
import { newDraft } from "../../../actors/messages/new-draft.ts";
import { type Identity, type Message, SCHEMA_VERSION } from "../../../actors/store/model.ts";
import { newMessage } from "../store/fixture.ts";

const HOST = "mail.platform.test";

function identity(fields: Partial<Identity> = {}): Identity {
  const now = new Date().toISOString();
  return {
    schema: SCHEMA_VERSION,
    user_id: randomUUID(),
    identity_id: randomUUID(),
    type: "local",
    protocol: "email",
    identifier: "bob@platform.test",
    display_name: "Bob Éléphant",
    status: "active",
    infos: {},
    has_credentials: false,
    date_insert: now,
    date_update: now,
    ...fields,
  };
}

function draftOf(from: Identity, fields: Partial<Message> = {}, recipients = defaultRecipients): Message {
  return { ...newDraft(from, { subject: "Déjà vu", body_plain: "plain body\n", body_html: "<p>html body</p>", participants: recipients }), ...fields };
}

const defaultRecipients: NonNullable<Parameters<typeof newDraft>[1]["participants"]> = [
  { type: "To", address: "alice@remote.test", label: "Alice" },
  { type: "To", address: "carol@remote.test" },
  { type: "Cc", address: "dave@remote.test", label: "Dave D" },
  { type: "Bcc", address: "hidden@secret.test", label: "Hidden Person" },
];

const addresses = (field: AddressObject | AddressObject[] | undefined) =>
  (Array.isArray(field) ? field : field === undefined ? [] : [field]).flatMap((a) => a.value).map((v) => ({ name: v.name, address: v.address }));

async function parse(raw: Buffer): Promise<ParsedMail> {
  return simpleParser(raw);
}

function headerBlock(raw: Buffer): string {
  const text = raw.toString("utf8");
  const end = text.indexOf("\r\n\r\n");
  assert.ok(end > 0, "the message has a header block ended by an empty line (CRLF)");
  return text.slice(0, end);
}

test("From is the identity, To/Cc/Reply-To come from the participants, Subject and Date are set", async () => {
  const from = identity();
  const date = new Date("2024-03-05T10:20:30Z");
  const draft = draftOf(from);
  draft.participants.push({ type: "Reply-To", address: "replies@platform.test", label: "Replies", protocol: "email", contact_ids: [] });
  const mime = await buildDraftMime(draft, from, null, { host: HOST, date });
  const mail = await parse(mime.raw);
  assert.equal(addresses(mail.from), [{ name: "Bob Éléphant", address: "bob@platform.test" }]);
  assert.equal(addresses(mail.to), [
    { name: "Alice", address: "alice@remote.test" },
    { name: "", address: "carol@remote.test" },
  ]);
  assert.equal(addresses(mail.cc), [{ name: "Dave D", address: "dave@remote.test" }]);
  assert.equal(addresses(mail.replyTo), [{ name: "Replies", address: "replies@platform.test" }]);
  assert.is(mail.subject, "Déjà vu");
  assert.is(mail.date?.toISOString(), date.toISOString());
  assert.is(mime.date.toISOString(), date.toISOString());
  assert.is(mail.headers.get("x-mailer"), undefined, "no X-Mailer naming the library");
});

test("Bcc is in the envelope only, never in a header", async () => {
  const from = identity();
  const mime = await buildDraftMime(draftOf(from), from, null, { host: HOST });
  const mail = await parse(mime.raw);
  assert.is(mail.bcc, undefined);
  const text = mime.raw.toString("utf8");
  assert.not.match(text, /hidden@secret\.test/i, "the Bcc address appears nowhere in the message");
  assert.not.match(text, /Hidden Person/, "nor its label");
  assert.not.match(headerBlock(mime.raw), /^bcc:/im);
  assert.equal(mime.envelope, {
    from: "bob@platform.test",
    to: ["alice@remote.test", "carol@remote.test", "dave@remote.test", "hidden@secret.test"],
  });
});

test("the envelope names each recipient once, lower-cased", async () => {
  const from = identity();
  const draft = draftOf(from, {}, [
    { type: "To", address: "Alice@Remote.test" },
    { type: "Cc", address: "alice@remote.test" },
    { type: "Bcc", address: "ALICE@remote.test" },
  ]);
  const mime = await buildDraftMime(draft, from, null, { host: HOST });
  assert.equal(mime.envelope.to, ["alice@remote.test"]);
});

test("Message-ID is a UUID on the platform's host, stable for one draft, distinct between drafts", async () => {
  const from = identity();
  const draft = draftOf(from);
  const mime = await buildDraftMime(draft, from, null, { host: HOST });
  const mail = await parse(mime.raw);
  assert.match(mime.messageId, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}@mail\.platform\.test$/);
  assert.is(mail.messageId, `<${mime.messageId}>`);
  assert.not.ok(mime.messageId.includes(draft.message_id), "the internal id is not exposed");
  const again = await buildDraftMime(draft, from, null, { host: HOST });
  assert.is(again.messageId, mime.messageId, "a second attempt of the same draft keeps its Message-ID");
  const other = await buildDraftMime(draftOf(from), from, null, { host: HOST });
  assert.is.not(other.messageId, mime.messageId);
  assert.is(draftMessageId(draft, "other.test").split("@")[1], "other.test");
});

test("a reply carries In-Reply-To = the parent's Message-ID and References = the parent's references then its id", async () => {
  const from = identity();
  const parent = newMessage(from.user_id, {
    external_references: { message_id: "<parent-1@remote.test>", parent_id: "grand@remote.test", ancestors_ids: ["<root@remote.test>", "grand@remote.test"] },
  });
  const draft = draftOf(from, { parent_id: parent.message_id });
  const mime = await buildDraftMime(draft, from, parent, { host: HOST });
  const mail = await parse(mime.raw);
  assert.is(mail.inReplyTo, "<parent-1@remote.test>");
  assert.equal(mail.references, ["<root@remote.test>", "<grand@remote.test>", "<parent-1@remote.test>"]);
  assert.is(mime.inReplyTo, "parent-1@remote.test");
  assert.equal(mime.references, ["root@remote.test", "grand@remote.test", "parent-1@remote.test"]);
});

test("a parent without References: its In-Reply-To starts the chain; a parent without Message-ID gives no threading", () => {
  const parent = newMessage(randomUUID(), { external_references: { message_id: "p@x.test", parent_id: "<gp@x.test>", ancestors_ids: [] } });
  assert.equal(replyThreading(parent), { inReplyTo: "p@x.test", references: ["gp@x.test", "p@x.test"] });
  const first = newMessage(randomUUID(), { external_references: { message_id: "p@x.test", parent_id: "", ancestors_ids: [] } });
  assert.equal(replyThreading(first), { inReplyTo: "p@x.test", references: ["p@x.test"] });
  const noId = newMessage(randomUUID(), { external_references: { message_id: "", parent_id: "gp@x.test", ancestors_ids: ["gp@x.test"] } });
  assert.equal(replyThreading(noId), { inReplyTo: "", references: [] });
  assert.equal(replyThreading(null), { inReplyTo: "", references: [] });
  assert.is(bareMessageId(" <<a@b>> "), "a@b");
});

test("no parent: no In-Reply-To nor References header", async () => {
  const from = identity();
  const mime = await buildDraftMime(draftOf(from), from, null, { host: HOST });
  assert.not.match(headerBlock(mime.raw), /^(in-reply-to|references):/im);
});

test("plain and html: multipart/alternative with text/plain then text/html", async () => {
  const from = identity();
  const mime = await buildDraftMime(draftOf(from), from, null, { host: HOST });
  const mail = await parse(mime.raw);
  assert.match(String(mail.headers.get("content-type") && (mail.headers.get("content-type") as { value: string }).value), /^multipart\/alternative$/);
  const text = mime.raw.toString("utf8");
  const plainAt = text.search(/Content-Type: text\/plain/i);
  const htmlAt = text.search(/Content-Type: text\/html/i);
  assert.ok(plainAt > 0 && htmlAt > plainAt, "text/plain part first, then text/html");
  assert.is(mail.text, "plain body\n");
  assert.is(mail.html, "<p>html body</p>");
  assert.is(mail.attachments.length, 0);
});

test("plain only: a single text/plain part", async () => {
  const from = identity();
  const mime = await buildDraftMime(draftOf(from, { body_html: "" }), from, null, { host: HOST });
  const mail = await parse(mime.raw);
  assert.is((mail.headers.get("content-type") as { value: string }).value, "text/plain");
  assert.not.match(mime.raw.toString("utf8"), /multipart|text\/html/i);
  assert.is(mail.text, "plain body\n");
  assert.is(mail.html, false);
});

test("html only: a single text/html part (the content is not dropped)", async () => {
  const from = identity();
  const mime = await buildDraftMime(draftOf(from, { body_plain: "" }), from, null, { host: HOST });
  const mail = await parse(mime.raw);
  assert.is((mail.headers.get("content-type") as { value: string }).value, "text/html");
  assert.is(String(mail.html).trim(), "<p>html body</p>");
});

test("no body at all: an empty text/plain message", async () => {
  const from = identity();
  const mime = await buildDraftMime(draftOf(from, { body_plain: "", body_html: "" }), from, null, { host: HOST });
  const mail = await parse(mime.raw);
  assert.is((mail.headers.get("content-type") as { value: string }).value, "text/plain");
});

test("non-ASCII text survives the round trip", async () => {
  const from = identity();
  const body = "Grüße — 日本語 😀\n";
  const mime = await buildDraftMime(draftOf(from, { body_plain: body, body_html: "", subject: "Ünïcødé 😀" }), from, null, { host: HOST });
  const mail = await parse(mime.raw);
  assert.is(mail.text, body.replace(/\n/g, "\r\n").replace(/\r\n$/, "\n"));
  assert.is(mail.subject, "Ünïcødé 😀");
  assert.ok(/^\p{ASCII}*$/u.test(headerBlock(mime.raw)), "headers are 7-bit (encoded words)");
});

test("every line ends with CRLF, even when the bodies were typed with bare LF", async () => {
  const from = identity();
  const draft = draftOf(from, { body_plain: "one\ntwo\r\nthree\n\nfour", body_html: "<p>a</p>\n<p>b</p>" });
  const mime = await buildDraftMime(draft, from, null, { host: HOST });
  const text = mime.raw.toString("latin1");
  assert.not.ok(/[^\r]\n/.test(text), "no bare LF");
  assert.ok(text.endsWith("\r\n"));
  const mail = await parse(mime.raw);
  assert.match(String(mail.text), /^one\r?\ntwo\r?\nthree\r?\n\r?\nfour/);
});

test.run();
