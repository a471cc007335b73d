// InboundEmail against a real nats-server and the real store, on a corpus of real-world MIME
// (test/fixtures/mime/*.eml, CRLF unless the file is about bare LF).

import { createHash, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { createUser } from "../../../actors/accounts/create-user.ts";
import { encodeFetchedHeader } from "../../../actors/mail/imported-tags.ts";
import { processInboundEmail } from "../../../actors/mail/inbound-email.ts";
import { CONFLICT_KEPT, MAX_MESSAGE_ID_CONFLICTS } from "../../../actors/mail/message-id-conflicts.ts";
import { MAX_BODY_BYTES, MAX_HEADER_BYTES } from "../../../actors/mail/parse-mail-stream.ts";
import type { Identity, Message, RawMessage, User } from "../../../actors/store/model.ts";
import type { Store } from "../../../actors/store/store.ts";
import type { Reply } from "../../../runtime/reply.ts";
import { newContact, type StoreFixture, startStore } from "../store/fixture.ts";

let f: StoreFixture;

test.before(async () => {
  f = await startStore();
});

test.after(async () => {
  await f.nats.stop();
});

const NOW = new Date("2024-06-01T12:00:00.000Z");
const now = () => NOW;
const LOCAL_ADDRESS = "bob@caliopen.local";

const eml = (name: string): Buffer => readFileSync(new URL(`../../fixtures/mime/${name}`, import.meta.url));
const sha256 = (bytes: Uint8Array | string) => createHash("sha256").update(bytes).digest("hex");
/** The content hash, computed here on its own: the bytes from the first line that is neither a trace field nor its continuation. */
function contentOf(bytes: Buffer): string {
  const text = bytes.toString("latin1");
  const leading = /^(?:(?:Received|Return-Path|X-Fetched-[A-Za-z-]+):[^\n]*\n(?:[ \t][^\n]*\n)*)*/i.exec(text)?.[0] ?? "";
  return sha256(bytes.subarray(leading.length));
}
/** DECISIONS §4, computed here on its own: sha256 of the sorted `protocol:address` list, or of the List-ID. */
const discussionOf = (addresses: string[]) => sha256([...new Set(addresses.map((a) => `email:${a}`))].sort().join("\n"));

interface Account {
  user: User;
  local: Identity;
}

/** A fresh user (each test its own, so de-duplication by Message-ID never crosses tests). */
async function newAccount(): Promise<Account> {
  const { user, identity } = await createUser(f.store, { name: `bob-${randomUUID()}`, email: LOCAL_ADDRESS, display_name: "Bob Durand" });
  assert.ok(identity);
  return { user, local: identity };
}

async function remoteIdentity(user: User, identifier = "bob.durand@gmail.com"): Promise<Identity> {
  return f.store.identities.create({ user_id: user.user_id, type: "remote", protocol: "imap", identifier, infos: { inserver: "imap.gmail.com:993" } });
}

async function importBytes(
  bytes: Uint8Array,
  user: User,
  identity: Identity,
  store: Store = f.store,
): Promise<{ raw: RawMessage; reply: Reply; message: Message | null }> {
  const raw = await store.raws.put(identity.type === "remote" ? user.user_id : null, bytes);
  const reply = await processInboundEmail(store, { message_id: raw.raw_msg_id, remote_id: identity.identity_id, user_id: user.user_id }, { now });
  const message = typeof reply.message_id === "string" ? await store.messages.get(user.user_id, reply.message_id) : null;
  return { raw, reply, message };
}

async function importFile(name: string, account: Account, identity: Identity = account.local) {
  return importBytes(eml(name), account.user, identity);
}

function imported(reply: Reply, message: Message | null): asserts message is Message {
  assert.equal(reply, { error: false, message: "message imported", message_id: reply.message_id, discussion_id: reply.discussion_id }, JSON.stringify(reply));
  assert.ok(message, "the message is stored under the id of the reply");
  assert.is(message.discussion_id, reply.discussion_id);
}

test("plain text: every field of the message, contacts linked, raw marked delivered", async () => {
  const account = await newAccount();
  const alice = await f.store.contacts.create(newContact(account.user.user_id, ["alice.martin@example.org"]));
  const { raw, reply, message } = await importFile("plain.eml", account);
  imported(reply, message);
  assert.equal(message, {
    schema: 1,
    user_id: account.user.user_id,
    message_id: reply.message_id,
    discussion_id: discussionOf(["alice.martin@example.org", "bob@caliopen.local", "carol@example.net"]),
    raw_msg_id: raw.raw_msg_id,
    subject: "Dinner on Friday?",
    body_plain: "Hi Bob,\n\nAre you free for dinner on Friday? Carol suggested the little\nLebanese place near the station, around 8pm.\n\nCheers,\nAlice",
    body_html: "",
    date: "2024-01-16T08:42:11.000Z",
    date_insert: NOW.toISOString(),
    is_draft: false,
    is_unread: true,
    is_flagged: false,
    is_received: true,
    is_answered: false,
    participants: [
      { type: "From", address: "alice.martin@example.org", label: "Alice Martin", protocol: "email", contact_ids: [alice.contact_id] },
      // Bob's own address: the card createUser made for him.
      { type: "To", address: "bob@caliopen.local", label: "Bob Durand", protocol: "email", contact_ids: [account.user.contact_id] },
      { type: "Cc", address: "carol@example.net", label: "", protocol: "email", contact_ids: [] },
    ],
    external_references: { message_id: "20240116084211.GA31337@mail.example.org", parent_id: "", ancestors_ids: [] },
    attachments: [],
    tags: [],
    protocol: "email",
    user_identities: [account.local.identity_id],
    parent_id: null,
    // Return-Path and Received are left out of the content.
    content_sha256: contentOf(eml("plain.eml")),
  });
  assert.is((await f.store.raws.get(raw.raw_msg_id))?.delivered, true);
  assert.is((await f.store.messages.byExternalId(account.user.user_id, "20240116084211.GA31337@mail.example.org"))?.message_id, message.message_id);
});

test("multipart/alternative: UTF-8 B-encoded subject, quoted-printable text and base64 HTML decoded", async () => {
  const account = await newAccount();
  const { reply, message } = await importFile("alternative.eml", account);
  imported(reply, message);
  assert.is(message.subject, "Réunion de lundi — ordre du jour ✔");
  assert.ok(
    message.body_plain.startsWith("Bonjour à tous,\n\nVoici l'ordre du jour de lundi :\n\n1. Migration vers NATS\n2. Revue des clés PGP\n"),
    message.body_plain,
  );
  assert.ok(message.body_plain.includes("— Camille"));
  assert.ok(message.body_html.includes("<p>Bonjour à tous,</p>"), message.body_html);
  assert.ok(message.body_html.includes("<li>Revue des clés PGP</li>"));
  assert.not.ok(message.body_html.includes("Voici l'ordre du jour de lundi :\n"), "the plain part is not also in the HTML");
  assert.equal(
    message.participants.map((p) => [p.type, p.address, p.label]),
    [
      ["From", "camille@example.com", "Camille Bérard"],
      ["To", "bob@caliopen.local", ""],
      ["To", "jean.dupont@example.com", "Dupont, Jean"],
    ],
  );
  assert.is(message.date, "2024-02-05T17:03:00.000Z");
  assert.is(message.external_references.message_id, "CAF7x-m2qk9Q1r=Zk+eYh3P@mail.example.com");
  assert.equal(message.attachments, []);
});

test("ISO-8859-1: Q-encoded subject and display name, quoted-printable latin-1 body with soft breaks", async () => {
  const account = await newAccount();
  const { reply, message } = await importFile("latin1.eml", account);
  imported(reply, message);
  assert.is(message.subject, "Re: Réservation confirmée pour l'hôtel");
  assert.equal(message.participants[0], {
    type: "From",
    address: "reservations@hotel-des-alpes.fr",
    label: "Renée Lefèvre",
    protocol: "email",
    contact_ids: [],
  });
  assert.ok(message.body_plain.includes("votre réservation pour deux nuits, du 12 au 14 février, en chambre double"), message.body_plain);
  assert.ok(message.body_plain.includes("Le chèque de caution n'est pas nécessaire."));
  assert.ok(message.body_plain.endsWith("Hôtel des Alpes\n"));
  assert.is(message.external_references.message_id, "000001da5f5b$9a8e1c40$cfaa54c0$@hotel-des-alpes.fr");
});

test("attachments: an inline image and a PDF give metadata only, the HTML keeps its cid: link", async () => {
  const account = await newAccount();
  const { reply, message } = await importFile("attachments.eml", account);
  imported(reply, message);
  assert.equal(message.attachments, [
    { attachment_id: "0", content_type: "image/png", file_name: "logo.png", size: 70, is_inline: true },
    { attachment_id: "1", content_type: "application/pdf", file_name: "facture-2024-117.pdf", size: 331, is_inline: false },
  ]);
  assert.ok(message.body_plain.includes("Veuillez trouver ci-joint votre facture 2024-117."));
  assert.ok(message.body_html.includes('src="cid:logo.1709806533@compta-conseil.example"'), "no data: URL made of the image");
  assert.not.ok(JSON.stringify(message).includes("JVBERi0"), "no attachment content in the message");
  assert.not.ok(JSON.stringify(message).includes("iVBORw0"), "no attachment content in the message");
});

test("broken headers: no Date (now), no Message-ID (known by its content's hash), a line without colon", async () => {
  const account = await newAccount();
  const bytes = eml("no-date-no-message-id.eml");
  const { reply, message } = await importFile("no-date-no-message-id.eml", account);
  imported(reply, message);
  assert.is(message.date, NOW.toISOString());
  assert.is(message.subject, "[cron] backup finished with 2 warnings");
  assert.is(message.external_references.message_id, `sha256:${contentOf(bytes)}`);
  assert.ok(message.body_plain.includes("backup finished: 14203 files, 2.1 GiB"), message.body_plain);
  assert.equal(
    message.participants.map((p) => [p.type, p.address]),
    [
      ["From", "backup@intranet.example"],
      ["To", "bob@caliopen.local"],
    ],
  );
  // The same bytes again: the same message.
  const again = await importBytes(bytes, account.user, account.local);
  assert.equal(again.reply, { error: false, message: "raw message already imported", message_id: message.message_id, discussion_id: message.discussion_id });
  assert.is((await f.store.messages.list(account.user.user_id)).total, 1);
});

test("broken headers: a garbage Date is now, bare LF line ends parse", async () => {
  const account = await newAccount();
  const bytes = eml("garbage-date-bare-lf.eml");
  assert.not.ok(bytes.includes("\r\n"), "the fixture has bare LF line ends");
  const { reply, message } = await importFile("garbage-date-bare-lf.eml", account);
  imported(reply, message);
  assert.is(message.date, NOW.toISOString());
  assert.is(message.subject, "Scanned document");
  assert.is(message.body_plain, 'Your document was scanned on device "Printer Room 3".\nPages: 4\n');
  assert.equal(message.participants[0], { type: "From", address: "scanner@office.example", label: "Printer Room 3", protocol: "email", contact_ids: [] });
  assert.is(message.external_references.message_id, "scan.20240401.0001@office.example");
});

test("degenerate input is stored as far as it goes, never dropped: an empty raw, a lone header, an empty group", async () => {
  const account = await newAccount();
  const cases: [string, Partial<Message>][] = [
    ["", { subject: "", body_plain: "", participants: [] }],
    ["Subject: only a subject", { subject: "only a subject", body_plain: "", participants: [] }],
    ["From: <>\r\nTo: undisclosed-recipients:;\r\n\r\nx", { subject: "", body_plain: "x", participants: [] }],
  ];
  for (const [text, expected] of cases) {
    const { reply, message } = await importBytes(Buffer.from(text), account.user, account.local);
    imported(reply, message);
    assert.equal({ subject: message.subject, body_plain: message.body_plain, participants: message.participants }, expected, JSON.stringify(text));
    assert.is(message.external_references.message_id, `sha256:${sha256(text)}`);
    assert.is(message.date, NOW.toISOString());
  }
});

test("PGP/MIME: stored with the armored message as plain body; the version part is no attachment", async () => {
  const account = await newAccount();
  const { reply, message } = await importFile("pgp-mime.eml", account);
  imported(reply, message);
  assert.is(message.subject, "...");
  assert.ok(message.body_plain.startsWith("-----BEGIN PGP MESSAGE-----\n\nwy4ECQMI3UPjd2Zs6czgccJXfNQTh3KYs0"), message.body_plain);
  assert.ok(message.body_plain.trimEnd().endsWith("=c+Kn\n-----END PGP MESSAGE-----"), message.body_plain);
  assert.is(message.body_html, "");
  assert.equal(message.attachments, [{ attachment_id: "0", content_type: "application/octet-stream", file_name: "encrypted.asc", size: 277, is_inline: true }]);
});

test("mailing list: the discussion is the List-ID's, whoever writes; Reply-To and Sender are participants", async () => {
  const account = await newAccount();
  const first = await importFile("mailing-list.eml", account);
  imported(first.reply, first.message);
  assert.is(first.message.discussion_id, sha256("list:dev.lists.caliopen.org"));
  assert.equal(
    first.message.participants.map((p) => [p.type, p.address, p.label]),
    [
      ["From", "dmitri@volkov.example", "Dmitri Volkov"],
      ["To", "dev@lists.caliopen.org", ""],
      ["Reply-To", "dev@lists.caliopen.org", ""],
      ["Sender", "dev-bounces@lists.caliopen.org", "caliopen-dev"],
    ],
  );
  // Another member writes to the list: same discussion.
  const other = eml("mailing-list.eml")
    .toString("utf8")
    .replace("From: Dmitri Volkov <dmitri@volkov.example>", "From: Ana Silva <ana@silva.example>")
    .replace("<87h6gdkq2x.fsf@volkov.example>", "<b7c2e1@silva.example>");
  const second = await importBytes(Buffer.from(other), account.user, account.local);
  imported(second.reply, second.message);
  assert.is.not(second.message.message_id, first.message.message_id);
  assert.is(second.message.discussion_id, first.message.discussion_id);
  // The same people without the list: the discussion of the people.
  const off = other.replace(/^List-Id:.*\r\n/m, "").replace("<b7c2e1@silva.example>", "<b7c2e2@silva.example>");
  const offList = await importBytes(Buffer.from(off), account.user, account.local);
  imported(offList.reply, offList.message);
  assert.is(offList.message.discussion_id, discussionOf(["ana@silva.example", "dev@lists.caliopen.org"]));
});

test("a reply is linked to the stored original by In-Reply-To; References are its ancestors", async () => {
  const account = await newAccount();
  const original = await importFile("plain.eml", account);
  imported(original.reply, original.message);
  const { reply, message } = await importFile("reply.eml", account);
  imported(reply, message);
  assert.is(message.parent_id, original.message.message_id);
  assert.equal(message.external_references, {
    message_id: "a1b2c3d4.7f3e@mail.example.net",
    parent_id: "20240116084211.GA31337@mail.example.org",
    ancestors_ids: ["1e3f5a7c@mail.example.org", "20240116084211.GA31337@mail.example.org"],
  });
  assert.is(message.subject, "Re: Dinner on Friday?");
  assert.ok(message.body_plain.includes("Le 16/01/2024 à 09:42, Alice Martin a écrit :"));

  // Without the original stored (another user), no parent; the external references stay.
  const alone = await importFile("reply.eml", await newAccount());
  imported(alone.reply, alone.message);
  assert.is(alone.message.parent_id, null);
  assert.is(alone.message.external_references.parent_id, "20240116084211.GA31337@mail.example.org");
});

test("fetched over IMAP: the flags and labels headers the bridge prepended become tags", async () => {
  const account = await newAccount();
  const gmail = await remoteIdentity(account.user);
  const { reply, message } = await importFile("imap-fetched.eml", account, gmail);
  imported(reply, message);
  // \Seen, $Forwarded dropped; \Flagged, \Answered, \Important, \Inbox without backslash; work = Work;
  // the X-Fetched-Imap-Flags further down (not the bridge's: "forged") ignored.
  assert.equal(message.tags, ["flagged", "answered", "$Label1", "Work", "important", "inbox", "Receipts"]);
  assert.equal(message.user_identities, [gmail.identity_id]);
  // The user's own address at that identity is the user's own card.
  assert.equal(message.participants[1], { type: "To", address: "bob.durand@gmail.com", label: "", protocol: "email", contact_ids: [account.user.contact_id] });
  assert.equal(
    [message.is_unread, message.is_flagged, message.is_answered],
    [false, true, true],
    "\\Seen, \\Flagged and \\Answered on the server: read, flagged and answered here",
  );
  assert.equal(message.locations, [{ identity_id: gmail.identity_id, mailbox: "INBOX", uid: 4711 }], "where it is on the server");
});

test("received over SMTP, the same headers are the sender's, not the bridge's: no tags", async () => {
  const account = await newAccount();
  const { reply, message } = await importFile("imap-fetched.eml", account);
  imported(reply, message);
  assert.equal(message.tags, []);
});

test("the same raw twice: already imported, same ids, one message", async () => {
  const account = await newAccount();
  const raw = await f.store.raws.put(null, eml("alternative.eml"));
  const order = { message_id: raw.raw_msg_id, remote_id: account.local.identity_id, user_id: account.user.user_id };
  const first = await processInboundEmail(f.store, order, { now });
  assert.is(first.message, "message imported");
  const second = await processInboundEmail(f.store, order, { now });
  assert.equal(second, { error: false, message: "raw message already imported", message_id: first.message_id, discussion_id: first.discussion_id });
  const all = await f.store.messages.list(account.user.user_id);
  assert.is(all.total, 1);
  assert.equal(all.items[0]?.user_identities, [account.local.identity_id]);
});

test("the same mail through a second identity: one message with both identities, never twice the same", async () => {
  const account = await newAccount();
  const gmail = await remoteIdentity(account.user);
  const first = await importFile("plain.eml", account);
  imported(first.reply, first.message);
  // The IMAP copy of the same mail: other bytes (the bridge's headers), same Message-ID.
  const fetched = Buffer.concat([Buffer.from(`X-Fetched-Imap-Flags: ${encodeFetchedHeader(["\\Seen", "Important"])}\r\n`), eml("plain.eml")]);
  const second = await importBytes(fetched, account.user, gmail);
  assert.equal(second.reply, {
    error: false,
    message: "raw message already imported",
    message_id: first.message.message_id,
    discussion_id: first.message.discussion_id,
  });
  assert.equal(second.message?.user_identities, [account.local.identity_id, gmail.identity_id]);
  assert.is((await f.store.raws.get(second.raw.raw_msg_id))?.delivered, true, "the duplicate raw is handled too");
  const third = await importBytes(fetched, account.user, gmail);
  assert.is(third.reply.message, "raw message already imported");
  assert.equal(third.message?.user_identities, [account.local.identity_id, gmail.identity_id]);
  assert.is((await f.store.messages.list(account.user.user_id)).total, 1);
});

test("unknown raw, user or identity, another user's identity or raw, a deleted identity: failure replies", async () => {
  const account = await newAccount();
  const other = await newAccount();
  const raw = await f.store.raws.put(null, eml("plain.eml"));
  const order = { message_id: raw.raw_msg_id, remote_id: account.local.identity_id, user_id: account.user.user_id };
  const fails = async (changed: Record<string, unknown>, reason: RegExp) => {
    const reply = await processInboundEmail(f.store, { ...order, ...changed } as typeof order, { now });
    assert.is(reply.error, true, JSON.stringify(reply));
    assert.match(reply.message, reason);
    assert.is(Object.keys(reply).sort().join(), "error,message");
  };
  const unknownRaw = randomUUID();
  await fails({ message_id: unknownRaw }, new RegExp(`unknown raw message ${unknownRaw}`));
  const unknownUser = randomUUID();
  await fails({ user_id: unknownUser }, new RegExp(`unknown user ${unknownUser}`));
  await fails({ remote_id: randomUUID() }, /is not an identity of user/);
  await fails({ remote_id: other.local.identity_id }, new RegExp(`identity ${other.local.identity_id} is not an identity of user ${account.user.user_id}`));
  await fails({ message_id: undefined }, /needs a non-empty string message_id/);
  await fails({ remote_id: 42 }, /needs a non-empty string remote_id/);
  const gmail = await remoteIdentity(account.user);
  await f.store.identities.markDeleted(account.user.user_id, gmail.identity_id);
  await fails({ remote_id: gmail.identity_id }, /is deleted/);
  const othersRaw = await f.store.raws.put(other.user.user_id, eml("plain.eml"));
  await fails({ message_id: othersRaw.raw_msg_id }, /belongs to another user/);
  // Nothing was stored, and the raw is still waiting.
  assert.is((await f.store.messages.list(account.user.user_id)).total, 0);
  assert.is((await f.store.raws.get(raw.raw_msg_id))?.delivered, false);
  // And then it goes through.
  assert.is((await processInboundEmail(f.store, order, { now })).message, "message imported");
});

test("a store failure is a failure reply naming it, never a throw; a half-done import leaves no message", async () => {
  const account = await newAccount();
  const raw = await f.store.raws.put(null, eml("plain.eml"));
  const order = { message_id: raw.raw_msg_id, remote_id: account.local.identity_id, user_id: account.user.user_id };
  const failing = (method: "claimExternalId" | "create"): Store => ({
    ...f.store,
    messages: new Proxy(f.store.messages, {
      get: (target, name, receiver) =>
        name === method
          ? async () => {
              throw new Error(`lookups bucket unavailable (${method})`);
            }
          : (Reflect.get(target, name, receiver) as unknown),
    }),
  });
  for (const method of ["claimExternalId", "create"] as const) {
    const reply = await processInboundEmail(failing(method), order, { now });
    assert.is(reply.error, true, JSON.stringify(reply));
    assert.match(
      reply.message,
      new RegExp(`^cannot import raw message ${raw.raw_msg_id} for user ${account.user.user_id}: lookups bucket unavailable \\(${method}\\)$`),
    );
    assert.is((await f.store.messages.list(account.user.user_id)).total, 0, `no message left after ${method} failed`);
    assert.is((await f.store.raws.get(raw.raw_msg_id))?.delivered, false);
  }
  // The retry, the store working again: imported once.
  assert.is((await processInboundEmail(f.store, order, { now })).message, "message imported");
  assert.is((await f.store.messages.list(account.user.user_id)).total, 1);
});

test("MIME the parser gives up on (a header block over its limit, which the SMTP server refuses): a failure naming the raw", async () => {
  const account = await newAccount();
  const bytes = Buffer.from(
    `From: a@example.org\r\nTo: ${LOCAL_ADDRESS}\r\nX-Junk: ${"x".repeat(MAX_HEADER_BYTES + 100_000)}\r\nSubject: big head\r\n\r\nbody\r\n`,
  );
  const { raw, reply } = await importBytes(bytes, account.user, account.local);
  assert.is(reply.error, true);
  assert.match(reply.message, new RegExp(`^cannot parse raw message ${raw.raw_msg_id}: .+`));
  assert.is((await f.store.messages.list(account.user.user_id)).total, 0);
});

test("a body too big for a message document is cut, said in the reply; the raw keeps it whole", async () => {
  const account = await newAccount();
  const line = "Lorem ipsum dolor sit amet, consectetur adipiscing elit — été.\r\n";
  const body = line.repeat(Math.ceil((2 * MAX_BODY_BYTES) / line.length));
  const bytes = Buffer.from(
    `From: a@example.org\r\nTo: ${LOCAL_ADDRESS}\r\nSubject: long\r\nMessage-ID: <long@example.org>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body}`,
  );
  const { reply, message } = await importBytes(bytes, account.user, account.local);
  assert.is(reply.message, "message imported", JSON.stringify(reply));
  assert.is(reply.body_truncated, true);
  assert.ok(message);
  const stored = Buffer.byteLength(message.body_plain, "utf8");
  assert.ok(stored <= MAX_BODY_BYTES && stored > MAX_BODY_BYTES - 8, `${stored} bytes`);
  assert.ok(body.replace(/\r\n/g, "\n").startsWith(message.body_plain), "cut on a character boundary, nothing garbled");
});

test("the same Message-ID processed 5 times at once (5 nodes): one message, every reply agrees", async () => {
  const account = await newAccount();
  const gmail = await remoteIdentity(account.user);
  const stores = [f.store, await f.openAnother(), await f.openAnother(), await f.openAnother(), await f.openAnother()];
  const identities = [account.local, gmail, account.local, gmail, account.local];
  const replies = await Promise.all(stores.map((store, i) => importBytes(eml("attachments.eml"), account.user, identities[i]!, store)));
  for (const { reply } of replies) assert.is(reply.error, false, JSON.stringify(reply));
  const ids = new Set(replies.map(({ reply }) => reply.message_id));
  assert.is(ids.size, 1, JSON.stringify(replies.map(({ reply }) => reply)));
  assert.is(new Set(replies.map(({ reply }) => reply.discussion_id)).size, 1);
  assert.is(replies.filter(({ reply }) => reply.message === "message imported").length, 1);
  const all = await f.store.messages.list(account.user.user_id);
  assert.is(all.total, 1);
  assert.is(all.items[0]?.message_id, [...ids][0]);
  assert.equal([...(all.items[0]?.user_identities ?? [])].sort(), [account.local.identity_id, gmail.identity_id].sort());
});

/** A mail of its own: `body` under the given Message-ID, optional trace fields on top. */
function mailWith(messageId: string, body: string, trace: string[] = []): Buffer {
  return Buffer.from(
    [
      ...trace,
      "From: Alice <alice@example.org>",
      `To: ${LOCAL_ADDRESS}`,
      "Subject: the contract",
      `Message-ID: <${messageId}>`,
      "Date: Mon, 03 Jun 2024 09:00:00 +0000",
      "",
      body,
      "",
    ].join("\r\n"),
  );
}

/** The reply for a conflicting copy kept on `message`. */
const conflictKept = (message: Message): Reply => ({
  error: false,
  message: CONFLICT_KEPT,
  message_id: message.message_id,
  discussion_id: message.discussion_id,
});

async function reimport(raw: RawMessage, user: User, identity: Identity): Promise<Reply> {
  return processInboundEmail(f.store, { message_id: raw.raw_msg_id, remote_id: identity.identity_id, user_id: user.user_id }, { now });
}

test("a forged first copy under the victim's Message-ID: one message, the genuine mail kept whole as a conflicting copy on it", async () => {
  const account = await newAccount();
  const { user, local } = account;
  const id = `${randomUUID()}@example.org`;
  const forged = await importBytes(mailWith(id, "Pay the invoice to IBAN XX00 EVIL."), user, local);
  imported(forged.reply, forged.message);
  const genuineBytes = mailWith(id, "Here is the signed contract.", [
    "Received: from mx.example.org ([192.0.2.1]) by mx.caliopen.local; Mon, 03 Jun 2024 09:00:05 +0000",
  ]);
  const genuine = await importBytes(genuineBytes, user, local);
  // A success naming the message that holds the Message-ID (DECISIONS §3's shape), saying what was done.
  assert.equal(genuine.reply, conflictKept(forged.message));
  assert.is((await f.store.messages.list(user.user_id)).total, 1, "one message per Message-ID");
  const held = await f.store.messages.get(user.user_id, forged.message.message_id);
  assert.is(held?.body_plain.trim(), "Pay the invoice to IBAN XX00 EVIL.");
  assert.equal(held?.message_id_conflicts, [
    { raw_id: genuine.raw.raw_msg_id, content_sha256: contentOf(genuineBytes), identity_id: local.identity_id, received_at: genuine.raw.date_insert },
  ]);
  assert.is(held?.message_id_conflicts_omitted, undefined);
  assert.equal(Buffer.from((await f.store.raws.read(genuine.raw.raw_msg_id)) ?? []), genuineBytes, "the genuine raw is kept whole");
  assert.is((await f.store.raws.get(genuine.raw.raw_msg_id))?.delivered, true);
  assert.is((await f.store.messages.byExternalId(user.user_id, id))?.message_id, forged.message.message_id);

  // The order for the genuine raw redelivered: the same answer, nothing listed twice.
  assert.equal(await reimport(genuine.raw, user, local), conflictKept(forged.message));
  assert.equal((await f.store.messages.get(user.user_id, forged.message.message_id))?.message_id_conflicts, held?.message_id_conflicts);
  // The forged mail again (another raw, its own Received): the same mail, already imported.
  const forgedAgain = await importBytes(
    mailWith(id, "Pay the invoice to IBAN XX00 EVIL.", ["Received: from relay.example.net; Mon, 03 Jun 2024 09:01:00 +0000"]),
    user,
    local,
  );
  assert.equal(forgedAgain.reply, {
    error: false,
    message: "raw message already imported",
    message_id: forged.message.message_id,
    discussion_id: forged.message.discussion_id,
  });
  assert.is((await f.store.messages.list(user.user_id)).total, 1);
});

test("the conflicting copy by other paths: listed once per receiving identity, an IMAP re-import adds nothing", async () => {
  const account = await newAccount();
  const { user, local } = account;
  const id = `${randomUUID()}@example.org`;
  const forged = await importBytes(mailWith(id, "forged"), user, local);
  imported(forged.reply, forged.message);
  const overSmtp = await importBytes(
    mailWith(id, "genuine", ["Received: from mx.example.org by mx.caliopen.local; Mon, 03 Jun 2024 09:00:05 +0000"]),
    user,
    local,
  );
  assert.equal(overSmtp.reply, conflictKept(forged.message));
  // The same mail fetched from the user's Gmail: another identity received it.
  const gmail = await remoteIdentity(user);
  const fetched = (uid: number) =>
    mailWith(id, "genuine", [`X-Fetched-Imap-Uid: ${uid}`, "Received: from relay.example.net by imap.example.net; Mon, 03 Jun 2024 09:00:07 +0000"]);
  const overImap = await importBytes(fetched(7), user, gmail);
  assert.equal(overImap.reply, conflictKept(forged.message));
  // A fullfetch stores it again as a new raw: the same content by the same identity, nothing new.
  const refetched = await importBytes(fetched(7), user, gmail);
  assert.equal(refetched.reply, conflictKept(forged.message));
  const held = await f.store.messages.get(user.user_id, forged.message.message_id);
  assert.equal(
    held?.message_id_conflicts?.map((c) => [c.raw_id, c.identity_id]),
    [
      [overSmtp.raw.raw_msg_id, local.identity_id],
      [overImap.raw.raw_msg_id, gmail.identity_id],
    ],
  );
  assert.equal(held?.user_identities, [local.identity_id], "the message itself was received by the local identity only");
  assert.is((await f.store.raws.get(refetched.raw.raw_msg_id))?.delivered, true);
  assert.is((await f.store.messages.list(user.user_id)).total, 1);
});

test("a trace field below the first other field is content: the mail is another one", async () => {
  const account = await newAccount();
  const id = `${randomUUID()}@example.org`;
  const first = await importBytes(mailWith(id, "same body"), account.user, account.local);
  imported(first.reply, first.message);
  const moved = Buffer.from(mailWith(id, "same body").toString("latin1").replace("To: ", "Received: from somewhere\r\nTo: "), "latin1");
  const second = await importBytes(moved, account.user, account.local);
  assert.equal(second.reply, conflictKept(first.message));
  assert.equal(
    (await f.store.messages.get(account.user.user_id, first.message.message_id))?.message_id_conflicts?.map((c) => c.content_sha256),
    [contentOf(moved)],
  );
});

test("two contents under one Message-ID on 5 nodes at once: one message, the other content listed once, every reply names the message", async () => {
  const account = await newAccount();
  const id = `${randomUUID()}@example.org`;
  const stores = [f.store, await f.openAnother(), await f.openAnother(), await f.openAnother(), await f.openAnother()];
  const bodies = ["genuine", "forged", "genuine", "forged", "genuine"];
  const results = await Promise.all(stores.map((store, i) => importBytes(mailWith(id, bodies[i]!), account.user, account.local, store)));
  const all = (await f.store.messages.list(account.user.user_id)).items;
  assert.is(all.length, 1, JSON.stringify(results.map(({ reply }) => reply)));
  const [message] = all;
  assert.ok(message);
  const kept = message.body_plain.trim();
  for (const [i, { reply, raw }] of results.entries()) {
    assert.is(reply.error, false, JSON.stringify(reply));
    assert.is(reply.message_id, message.message_id);
    assert.is(reply.discussion_id, message.discussion_id);
    const expected = bodies[i] === kept ? ["message imported", "raw message already imported"] : [CONFLICT_KEPT];
    assert.ok(expected.includes(reply.message), `${bodies[i]}: ${reply.message}`);
    assert.is((await f.store.raws.get(raw.raw_msg_id))?.delivered, true);
  }
  assert.is(results.filter(({ reply }) => reply.message === "message imported").length, 1);
  const other = kept === "genuine" ? "forged" : "genuine";
  assert.equal(
    message.message_id_conflicts?.map((c) => c.content_sha256),
    [contentOf(mailWith(id, other))],
  );
  assert.ok(
    results.some(({ raw }) => raw.raw_msg_id === message.message_id_conflicts?.[0]?.raw_id),
    "one of the other content's raws",
  );
  assert.is((await f.store.messages.byExternalId(account.user.user_id, id))?.message_id, message.message_id);
});

test("an import that stopped between its claim and its message is completed by the next import: one message", async () => {
  const account = await newAccount();
  const id = `${randomUUID()}@example.org`;
  // What a node that died after claiming the Message-ID, before writing the message, leaves behind.
  const claimed = randomUUID();
  assert.is(await f.store.messages.claimExternalId(account.user.user_id, id, claimed), claimed);
  assert.is(await f.store.messages.byExternalId(account.user.user_id, id), null);
  const next = await importBytes(mailWith(id, "half done"), account.user, account.local);
  imported(next.reply, next.message);
  assert.is(next.reply.message_id, claimed, "stored under the id claimed");
  const again = await importBytes(mailWith(id, "half done"), account.user, account.local);
  assert.is(again.reply.message, "raw message already imported");
  assert.is(again.reply.message_id, claimed);
  assert.is((await f.store.messages.list(account.user.user_id)).total, 1);
});

test("a store failure while keeping a conflicting copy: a failure reply, the raw still waiting; the retry lists it once", async () => {
  const account = await newAccount();
  const id = `${randomUUID()}@example.org`;
  const first = await importBytes(mailWith(id, "first"), account.user, account.local);
  imported(first.reply, first.message);
  const raw = await f.store.raws.put(null, mailWith(id, "second"));
  const order = { message_id: raw.raw_msg_id, remote_id: account.local.identity_id, user_id: account.user.user_id };
  const failing: Store = {
    ...f.store,
    messages: new Proxy(f.store.messages, {
      get: (target, name, receiver) =>
        name === "update"
          ? async () => {
              throw new Error("messages bucket unavailable");
            }
          : (Reflect.get(target, name, receiver) as unknown),
    }),
  };
  const reply = await processInboundEmail(failing, order, { now });
  assert.is(reply.error, true, JSON.stringify(reply));
  assert.match(reply.message, /messages bucket unavailable/);
  assert.is((await f.store.raws.get(raw.raw_msg_id))?.delivered, false);
  assert.is((await f.store.messages.get(account.user.user_id, first.message.message_id))?.message_id_conflicts, undefined);
  assert.equal(await processInboundEmail(f.store, order, { now }), conflictKept(first.message));
  assert.equal(await processInboundEmail(f.store, order, { now }), conflictKept(first.message));
  assert.is((await f.store.messages.get(account.user.user_id, first.message.message_id))?.message_id_conflicts?.length, 1);
  assert.is((await f.store.messages.list(account.user.user_id)).total, 1);
});

test(`at most ${MAX_MESSAGE_ID_CONFLICTS} conflicting copies are listed, the others counted; the document stays small`, async () => {
  const account = await newAccount();
  const id = `${randomUUID()}@example.org`;
  const first = await importBytes(mailWith(id, "first"), account.user, account.local);
  imported(first.reply, first.message);
  const copies: RawMessage[] = [];
  for (let i = 0; i < MAX_MESSAGE_ID_CONFLICTS + 3; i++) {
    const copy = await importBytes(mailWith(id, `variant ${i}`), account.user, account.local);
    assert.equal(copy.reply, conflictKept(first.message));
    copies.push(copy.raw);
  }
  // A listed copy redelivered counts nothing.
  assert.equal(await reimport(copies[3]!, account.user, account.local), conflictKept(first.message));
  const held = await f.store.messages.get(account.user.user_id, first.message.message_id);
  assert.equal(
    held?.message_id_conflicts?.map((c) => c.raw_id),
    copies.slice(0, MAX_MESSAGE_ID_CONFLICTS).map((raw) => raw.raw_msg_id),
  );
  assert.is(held?.message_id_conflicts_omitted, 3);
  const size = Buffer.byteLength(JSON.stringify(held));
  assert.ok(size < 16 * 1024, `${size} bytes`);
  for (const raw of copies) assert.is((await f.store.raws.get(raw.raw_msg_id))?.delivered, true);
});

test("a message stored before content hashes were kept: its hash is taken from its raw, once", async () => {
  const account = await newAccount();
  const id = `${randomUUID()}@example.org`;
  const bytes = mailWith(id, "old mail");
  const old = await importBytes(bytes, account.user, account.local);
  imported(old.reply, old.message);
  // As an earlier release stored it: no content_sha256.
  await f.store.messages.update(account.user.user_id, old.message.message_id, ({ content_sha256: _dropped, ...rest }) => rest);
  // The IMAP copy of the same mail: the same message.
  const gmail = await remoteIdentity(account.user);
  const copy = await importBytes(Buffer.concat([Buffer.from("X-Fetched-Imap-Uid: 12\r\n"), bytes]), account.user, gmail);
  assert.is(copy.reply.message, "raw message already imported");
  assert.is(copy.reply.message_id, old.message.message_id);
  assert.is((await f.store.messages.get(account.user.user_id, old.message.message_id))?.content_sha256, contentOf(bytes), "its hash is kept now");
  // Another content under its Message-ID: a conflicting copy on it.
  const other = await importBytes(mailWith(id, "not the old mail"), account.user, account.local);
  assert.equal(other.reply, conflictKept(old.message));
  assert.is((await f.store.messages.list(account.user.user_id)).total, 1);
});

test("a 1 MiB To header of 100,000 addresses: stored once, 100 participants linked, the rest counted, the document far under 1 MiB", async () => {
  const account = await newAccount();
  const ann = await f.store.contacts.create(newContact(account.user.user_id, ["a0@flood.example"]));
  const addresses: string[] = [];
  let size = 0;
  for (let i = 0; size < MiB; i++) {
    addresses.push(`a${i}@flood.example`);
    size += addresses.at(-1)!.length + 1;
  }
  // Folded as a mail client folds it, lines under 78 characters.
  const lines: string[] = [];
  let line = "To:";
  for (const address of addresses) {
    if (line.length + address.length + 2 > 76) {
      lines.push(line);
      line = "";
    }
    line += ` ${address},`;
  }
  lines.push(line.slice(0, -1));
  const header = lines.join("\r\n");
  assert.ok(header.length >= MiB, `${header.length} bytes of To`);
  const bytes = Buffer.from(
    `From: flood@example.org\r\n${header}\r\nCc: c1@example.org, c2@example.org\r\nSubject: everyone\r\nMessage-ID: <flood-${randomUUID()}@example.org>\r\n\r\nhello all\r\n`,
  );
  let lookups = 0;
  const counting: Store = {
    ...f.store,
    contacts: new Proxy(f.store.contacts, {
      get: (target, name, receiver) => {
        const value = Reflect.get(target, name, receiver) as unknown;
        if (name !== "byAddress" || typeof value !== "function") return value;
        return (...args: unknown[]) => {
          lookups++;
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    }),
  };
  const { reply, message } = await importBytes(bytes, account.user, account.local, counting);
  imported(reply, message);
  const to = message.participants.filter((p) => p.type === "To");
  assert.is(to.length, 100);
  assert.equal(
    to.slice(0, 2).map((p) => p.address),
    ["a0@flood.example", "a1@flood.example"],
  );
  assert.equal(to[0]?.contact_ids, [ann.contact_id], "the kept addresses are linked to contacts");
  assert.equal(
    message.participants.filter((p) => p.type === "Cc").map((p) => p.address),
    ["c1@example.org", "c2@example.org"],
    "the limit is per header",
  );
  assert.equal(message.participants_omitted, { To: addresses.length - 100 });
  assert.ok(lookups <= 103, `${lookups} contact lookups`);
  const document = Buffer.byteLength(JSON.stringify(message));
  assert.ok(document < 64 * 1024, `${document} bytes`);
  assert.is((await f.store.messages.list(account.user.user_id)).total, 1);
  // With a lower limit set, fewer.
  const few = await processInboundEmail(
    f.store,
    {
      message_id: (await f.store.raws.put(null, Buffer.from(bytes.toString().replace("flood-", "flood-again-")))).raw_msg_id,
      remote_id: account.local.identity_id,
      user_id: account.user.user_id,
    },
    { now, maxAddressesPerHeader: 3 },
  );
  const fewMessage = await f.store.messages.get(account.user.user_id, few.message_id as string);
  assert.is(fewMessage?.participants.filter((p) => p.type === "To").length, 3);
  assert.equal(fewMessage?.participants_omitted, { To: addresses.length - 3 });
});

test("hostile sizes fit the document: a huge subject, display name, Message-ID and References, bodies JSON escapes sixfold", async () => {
  const account = await newAccount();
  const control = "\u0001".repeat(MAX_BODY_BYTES);
  const bytes = Buffer.from(
    [
      `From: "${"N".repeat(300_000)}" <n@example.org>`,
      `To: ${LOCAL_ADDRESS}`,
      `Subject: ${"S".repeat(500_000)}`,
      `Message-ID: <${"m".repeat(200_000)}@example.org>`,
      `References: ${Array.from({ length: 2_000 }, (_, i) => `<ref-${i}-${"r".repeat(200)}@example.org>`).join(" ")}`,
      "MIME-Version: 1.0",
      'Content-Type: multipart/alternative; boundary="B"',
      "",
      "--B",
      "Content-Type: text/plain; charset=utf-8",
      "Content-Transfer-Encoding: base64",
      "",
      Buffer.from(control).toString("base64").replace(/.{76}/g, "$&\r\n"),
      "--B",
      "Content-Type: text/html; charset=utf-8",
      "Content-Transfer-Encoding: base64",
      "",
      Buffer.from(control).toString("base64").replace(/.{76}/g, "$&\r\n"),
      "--B--",
      "",
    ].join("\r\n"),
  );
  const { raw, reply, message } = await importBytes(bytes, account.user, account.local);
  assert.is(reply.message, "message imported", JSON.stringify(reply));
  assert.is(reply.body_truncated, true);
  assert.ok(message);
  assert.ok(Buffer.byteLength(JSON.stringify(message)) <= 768 * 1024, `${Buffer.byteLength(JSON.stringify(message))} bytes`);
  assert.is(message.subject.length, 1000);
  assert.is(message.participants[0]?.label.length, 256);
  // A Message-ID longer than a line can be is none: the mail is known by its content.
  assert.is(message.external_references.message_id, `sha256:${sha256(bytes)}`);
  assert.is(message.external_references.ancestors_ids.length, 50);
  assert.match(message.external_references.ancestors_ids.at(-1) ?? "", /^ref-1999-/);
  assert.ok(message.body_plain.length > 0 && message.body_plain === "\u0001".repeat(message.body_plain.length), "the plain body is cut, not emptied");
  assert.is(Buffer.from((await f.store.raws.read(raw.raw_msg_id)) ?? []).length, bytes.length, "the raw keeps it all");
});

const MiB = 1024 * 1024;

/** A mail with a 20 MiB attachment, made as it is stored: base64 lines in 64 KiB chunks. */
async function* hugeMail(attachmentBytes: number): AsyncIterable<Uint8Array> {
  yield Buffer.from(
    [
      "From: Studio Photo <studio@photo.example>",
      `To: ${LOCAL_ADDRESS}`,
      "Subject: Les photos du mariage (RAW)",
      "Date: Sat, 01 Jun 2024 10:00:00 +0200",
      "Message-ID: <huge-20MiB@photo.example>",
      "MIME-Version: 1.0",
      'Content-Type: multipart/mixed; boundary="HUGE-BOUNDARY"',
      "",
      "--HUGE-BOUNDARY",
      "Content-Type: text/plain; charset=utf-8",
      "",
      "Voici les photos en pièce jointe.",
      "--HUGE-BOUNDARY",
      'Content-Type: application/octet-stream; name="mariage.nef"',
      "Content-Transfer-Encoding: base64",
      'Content-Disposition: attachment; filename="mariage.nef"',
      "",
      "",
    ].join("\r\n"),
  );
  const block = Buffer.alloc(57 * 1149); // 57 bytes make one 76-character base64 line
  for (let i = 0; i < block.length; i++) block[i] = (i * 31 + 7) & 0xff;
  let left = attachmentBytes;
  while (left > 0) {
    const part = block.subarray(0, Math.min(block.length, left));
    left -= part.length;
    yield Buffer.from(`${(part.toString("base64").match(/.{1,76}/g) ?? []).join("\r\n")}\r\n`);
  }
  yield Buffer.from("--HUGE-BOUNDARY--\r\n");
}

/** The garbage collector, exposed at run time (the test runner starts node without --expose-gc). */
function exposedGc(): (() => void) | null {
  try {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as unknown;
    return typeof gc === "function" ? (gc as () => void) : null;
  } catch {
    return null;
  }
}

test("a 20 MiB attachment streams through: right size, live memory stays far below it", async () => {
  const account = await newAccount();
  const raw = await f.store.raws.put(null, hugeMail(20 * MiB));
  assert.ok(raw.size > 27 * MiB, `${raw.size} bytes stored`);
  const gc = exposedGc();
  // Live memory (collected before each sample): what is held, not what is allocated and dropped.
  const live = () => {
    gc?.();
    const usage = process.memoryUsage();
    return usage.heapUsed + usage.arrayBuffers;
  };
  const before = live();
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, live())), 50);
  const reply = await processInboundEmail(
    f.store,
    { message_id: raw.raw_msg_id, remote_id: account.local.identity_id, user_id: account.user.user_id },
    { now },
  );
  clearInterval(sampler);
  assert.is(reply.message, "message imported", JSON.stringify(reply));
  const message = await f.store.messages.get(account.user.user_id, reply.message_id as string);
  assert.equal(message?.attachments, [
    { attachment_id: "0", content_type: "application/octet-stream", file_name: "mariage.nef", size: 20 * MiB, is_inline: false },
  ]);
  assert.is(message?.body_plain, "Voici les photos en pièce jointe.");
  const growth = peak - before;
  if (gc === null) console.warn(`no gc exposed: memory growth ${(growth / MiB).toFixed(1)} MiB not checked`);
  // Usually 3–5 MiB; up to 12.5 MiB seen on a loaded machine (client buffers). Holding the raw whole,
  // the bug this guards against, costs more than its 27 MiB.
  else assert.ok(growth < 18 * MiB, `live memory grew by ${(growth / MiB).toFixed(1)} MiB while parsing`);
});

test.run();
