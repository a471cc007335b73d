// An IMAP import is exactly once under kill -9. Node processes running the real Caliopen services share
// one NATS; a Dovecot mailbox holds a large import (distinct Message-IDs, some mails without one, a few
// mails delivered twice). A fullfetch starts, and the node running the account's imap actor is killed
// with SIGKILL at random moments of the import, a new node started each time. Once the import has
// settled, the stored messages are compared with the mailbox one by one: every mail stored exactly once
// (by Message-ID, or by content for those without), nothing stored twice, nothing missing, nothing taken
// for a conflicting copy, and each message's raw stored with the mail's content and marked delivered.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createUser } from "../../actors/accounts/create-user.ts";
import { mailContentHash } from "../../actors/mail/mail-content-hash.ts";
import type { Message } from "../../actors/store/model.ts";
import { MAX_PAGE_LIMIT } from "../../actors/store/paging.ts";
import { openStore, type Store } from "../../actors/store/store.ts";
import { decodeJson, encodeJson } from "../../runtime/json.ts";
import { SecretBox } from "../../runtime/secret-box.ts";
import { Subjects } from "../../runtime/subjects.ts";
import { PASSWORD, startTestDovecot, type TestDovecot } from "../../scripts/local-servers/dovecot.ts";
import { sleep, waitFor } from "../../scripts/local-servers/wait.ts";
import { type NodeProcess, spawnNode } from "../helpers/cluster-processes.ts";
import { startTestNats, type TestNats } from "../helpers/nats-server.ts";

/** Mails with a Message-ID of their own. */
const WITH_ID = 1_500;
/** Mails without any Message-ID: known by their content. */
const WITHOUT_ID = 12;
/** Mails delivered twice, byte for byte (two UIDs, one message): among those with and without an id. */
const TWICE_WITH_ID = 3;
const TWICE_WITHOUT_ID = 1;
const KILLS = 4;
/** Past this long after a kill, the new owner has resumed the actor (failure detection 1 s, then the takeover). */
const RESUMED_AFTER_MS = 3_000;
const LOGIN = "bulk";

interface Context {
  nats: TestNats;
  dovecot: TestDovecot;
  client: NatsConnection;
  store: Store;
  keyText: string;
  dataDirs: string[];
  nodes: Map<string, NodeProcess>;
  started: number;
  userId: string;
  identityId: string;
}

interface ImapActor {
  node: string;
  state: unknown;
  context: {
    mode: string;
    progress: { mode: string; total: number; done: number; failed: number; started_at: string } | null;
    history: { mode: string; outcome: string; total: number; done: number; failed: number; started_at: string }[];
    folders: { failed_uids: number[] }[];
  };
}

const test = suite<Context>("IMAP import under kill -9");

function mail(n: number, messageId: string | null): Buffer {
  const lines = [
    `From: Sender ${n % 37} <sender${n % 37}@remote.test>`,
    `To: ${LOGIN}@remote.test`,
    `Subject: bulk mail ${n}`,
    `Date: Mon, 2 Nov 2026 10:${String(n % 60).padStart(2, "0")}:00 +0000`,
    ...(messageId === null ? [] : [`Message-ID: <${messageId}>`]),
    "MIME-Version: 1.0",
    "Content-Type: text/plain; charset=utf-8",
    "",
    `Body of mail ${n}.`,
    // Some weight, so that an import takes a little time, as real mail does.
    "x".repeat(200 + (n % 7) * 300),
    "",
  ];
  return Buffer.from(lines.join("\r\n"), "utf8");
}

async function startNode(ctx: Context): Promise<NodeProcess> {
  const id = `k${++ctx.started}`;
  const dataDir = await mkdtemp(join(tmpdir(), `caliopen-import-kill-${id}-`));
  ctx.dataDirs.push(dataDir);
  const node = await spawnNode(ctx.nats.env, id, {
    CALIOPEN_TEST_SERVICES: "caliopen",
    CALIOPEN_DATA_DIR: dataDir,
    CALIOPEN_SECRET_KEY: ctx.keyText,
    CALIOPEN_ALLOWED_DESTINATIONS: `${ctx.dovecot.server}+cleartext`,
    CALIOPEN_HTTP: "off",
    CALIOPEN_SMTP: "off",
    CALIOPEN_KEYSERVER: "off",
    CALIOPEN_KEY_DISCOVERY_WKD: "off",
    CALIOPEN_IMAP_PUSH: "off",
    CALIOPEN_FAILURE_DETECTION_MS: "1000",
    CALIOPEN_MAIL_HOST: "platform.test",
  });
  ctx.nodes.set(id, node);
  return node;
}

/** The imap actor as its owner reports it (debug subject), or null while nobody runs it. */
async function imapActor(ctx: Context): Promise<ImapActor | null> {
  const replies = await ctx.client.requestMany(`caliopen.debug.actor.imap.${ctx.identityId}`, encodeJson({}), {
    strategy: "stall",
    stall: 200,
    maxWait: 2_000,
  });
  for await (const msg of replies) {
    const decoded = decodeJson(msg.data);
    if (!decoded.ok) continue;
    const reply = decoded.value as { found?: boolean; node?: string; actor?: { state?: unknown; value?: unknown; context?: ImapActor["context"] } };
    if (reply.found === true && reply.actor?.context)
      return { node: String(reply.node), state: reply.actor.state ?? reply.actor.value, context: reply.actor.context };
  }
  return null;
}

async function* once(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}

async function allMessages(store: Store, userId: string): Promise<Message[]> {
  const out: Message[] = [];
  for (let offset = 0; ; offset += MAX_PAGE_LIMIT) {
    const page = await store.messages.list(userId, { offset, limit: MAX_PAGE_LIMIT });
    out.push(...page.items);
    if (offset + MAX_PAGE_LIMIT >= page.total) return out;
  }
}

/** Each mailbox message, read back over IMAP: its UID, the external id an import gives it, and its content hash. */
async function mailbox(ctx: Context): Promise<{ uid: number; externalId: string; contentSha256: string }[]> {
  const imap = await ctx.dovecot.client(LOGIN, PASSWORD);
  const out: { uid: number; externalId: string; contentSha256: string }[] = [];
  try {
    await imap.mailboxOpen("INBOX", { readOnly: true });
    for await (const row of imap.fetch("1:*", { uid: true, source: true }, { uid: true })) {
      const source = row.source ?? Buffer.alloc(0);
      const contentSha256 = await mailContentHash(once(source));
      const messageId = /^Message-ID: <([^>]+)>\r$/im.exec(source.toString("utf8"))?.[1] ?? null;
      out.push({ uid: row.uid, externalId: messageId ?? `sha256:${contentSha256}`, contentSha256 });
    }
  } finally {
    await imap.logout().catch(() => imap.close());
  }
  return out;
}

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  ctx.dovecot = await startTestDovecot();
  ctx.client = await ctx.nats.connect();
  ctx.keyText = SecretBox.generateKeyText();
  ctx.dataDirs = [];
  ctx.nodes = new Map();
  ctx.started = 0;

  const mails: Buffer[] = [];
  for (let n = 0; n < WITH_ID; n++) mails.push(mail(n, `bulk-${n}@sender.test`));
  for (let n = WITH_ID; n < WITH_ID + WITHOUT_ID; n++) mails.push(mail(n, null));
  for (let n = 0; n < TWICE_WITH_ID; n++) mails.push(mail(n * 97, `bulk-${n * 97}@sender.test`));
  for (let n = 0; n < TWICE_WITHOUT_ID; n++) mails.push(mail(WITH_ID + n, null));
  await ctx.dovecot.fillInbox(LOGIN, mails);

  for (let n = 0; n < 3; n++) await startNode(ctx);
  ctx.store = await openStore({ nc: ctx.client, subjects: new Subjects(""), secrets: SecretBox.fromText(ctx.keyText) });
  ctx.userId = (await createUser(ctx.store, { name: "bulk", email: "bulk@platform.test" })).user.user_id;
  const identity = await ctx.store.identities.create({
    user_id: ctx.userId,
    type: "remote",
    protocol: "imap",
    identifier: `${LOGIN}@remote.test`,
    display_name: "Bulk",
    infos: { inserver: ctx.dovecot.server, outserver: "127.0.0.1:1", poll_interval: "15" },
    credentials: { username: LOGIN, password: PASSWORD },
  });
  ctx.identityId = identity.identity_id;
});

test.after(async (ctx) => {
  for (const node of ctx.nodes.values()) node.child.kill("SIGKILL");
  await Promise.all([...ctx.nodes.values()].map((node) => node.exited));
  await ctx.dovecot.stop();
  await ctx.nats.stop();
  await Promise.all(ctx.dataDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

test("kill -9 of the imap actor's node at random moments of a fullfetch: every mail stored exactly once", async (ctx) => {
  const expected = await mailbox(ctx);
  const distinct = new Set(expected.map((entry) => entry.externalId));
  assert.is(expected.length, WITH_ID + WITHOUT_ID + TWICE_WITH_ID + TWICE_WITHOUT_ID, "the mailbox holds every mail delivered");
  assert.is(distinct.size, WITH_ID + WITHOUT_ID, "mails delivered twice have one external id");

  ctx.client.publish("IMAPfetcher", encodeJson({ order: "fullfetch", remote_id: ctx.identityId, user_id: ctx.userId }));
  const kills: string[] = [];
  let killedAt = 0;
  let killTime = 0;
  let victimId = "";
  // How far the import got: past it, the mails are new, their imports store messages (before it, a
  // re-run finds them imported).
  let frontier = 0;
  for (let kill = 0; kill < KILLS; kill++) {
    // The next kill falls in the fullfetch run again by the new owner (its progress starts over).
    let restarted = kill === 0;
    // A random moment of the import of new mail, past the frontier; the kills spread over 80 % of the
    // mailbox, so that the fullfetch cannot end before the last one.
    const share = Math.random();
    const at = (total: number) => frontier + Math.max(30, Math.floor((share * (0.8 * total - frontier)) / (KILLS - kill)));
    const owner = await waitFor(
      `the fullfetch past the ${kill + 1}. kill's point`,
      async () => {
        const actor = await imapActor(ctx);
        const progress = actor?.context.progress;
        // Seen starting over, or long enough after the kill that what is shown is the new owner's run, not
        // the snapshot it resumed from: a run over mail already imported can pass the last kill's point
        // while the replacement node starts, before any look.
        if (progress !== undefined && progress !== null && (progress.done < killedAt || (actor?.node !== victimId && Date.now() - killTime > RESUMED_AFTER_MS)))
          restarted = true;
        if (!restarted || actor === null || progress?.mode !== "fullfetch" || progress.total === 0 || actor.context.history.length > 0) return null;
        return progress.done >= at(progress.total) ? actor : null;
      },
      90_000,
      100,
    );
    // And a little later still, so the kill falls anywhere between two writes of an import.
    await sleep(Math.floor(Math.random() * 400));
    const victim = ctx.nodes.get(owner.node);
    assert.ok(victim !== undefined, `the imap actor runs on a node of this test (${owner.node})`);
    victim.child.kill("SIGKILL");
    await victim.exited;
    ctx.nodes.delete(owner.node);
    killedAt = owner.context.progress?.done ?? 0;
    killTime = Date.now();
    victimId = owner.node;
    frontier = Math.max(frontier, killedAt);
    kills.push(`${owner.node} at ${owner.context.progress?.done}/${owner.context.progress?.total}`);
    await startNode(ctx);
  }
  process.stdout.write(`    kill -9: ${kills.join(", ")}\n`);

  // Settled: a run finished without failed imports. Failed ones (their import was on a killed node) are
  // retried by the next sync, as a poll would.
  let nudged = "";
  const settled = await waitFor(
    "the import settled",
    async () => {
      const actor = await imapActor(ctx);
      const last = actor?.context.history[0];
      // Still running.
      if (actor === null || last === undefined || actor.context.progress?.started_at !== last.started_at) return null;
      if (last.outcome === "done" && last.failed === 0 && actor.context.folders.every((folder) => folder.failed_uids.length === 0)) return actor;
      if (nudged !== last.started_at) {
        nudged = last.started_at;
        ctx.client.publish("IMAPfetcher", encodeJson({ order: "sync", remote_id: ctx.identityId, user_id: ctx.userId }));
      }
      return null;
    },
    120_000,
    250,
  );
  const runs = [...settled.context.history].reverse().map((run) => `${run.mode} ${run.outcome} ${run.done}/${run.total}, ${run.failed} failed`);
  process.stdout.write(`    runs after the last kill: ${runs.join("; ")}\n`);

  const stored = await allMessages(ctx.store, ctx.userId);
  const byExternal = new Map<string, Message[]>();
  for (const message of stored)
    byExternal.set(message.external_references.message_id, [...(byExternal.get(message.external_references.message_id) ?? []), message]);
  const twice = [...byExternal].filter(([, messages]) => messages.length > 1).map(([id, messages]) => `${id} ×${messages.length}`);
  const missing = [...distinct].filter((id) => !byExternal.has(id));
  const unknown = [...byExternal.keys()].filter((id) => !distinct.has(id));
  process.stdout.write(
    `    ${expected.length} mails in the mailbox, ${distinct.size} distinct; ${stored.length} messages stored; twice: ${twice.length}, missing: ${missing.length}\n`,
  );
  assert.equal(twice, [], "no mail stored twice");
  assert.equal(missing, [], "no mail missing");
  assert.equal(unknown, [], "no message that is not a mail of the mailbox");
  assert.is(stored.length, distinct.size);

  // One by one: the message is the one its external id names, holds the mail's content, and its raw is
  // stored with that content and marked delivered (an import killed before marking it is completed by
  // the next import of the mail).
  const contentOf = new Map(expected.map((entry) => [entry.externalId, entry.contentSha256]));
  const wrong: string[] = [];
  for (const message of stored) {
    const externalId = message.external_references.message_id;
    const claimed = await ctx.store.messages.byExternalId(ctx.userId, externalId);
    if (claimed?.message_id !== message.message_id) wrong.push(`${externalId}: its claim names ${claimed?.message_id ?? "nothing"}`);
    if (message.content_sha256 !== contentOf.get(externalId)) wrong.push(`${externalId}: another content`);
    if ((message.message_id_conflicts ?? []).length > 0) wrong.push(`${externalId}: a copy of the same mail taken for a conflicting one`);
    const raw = message.raw_msg_id === null ? null : await ctx.store.raws.read(message.raw_msg_id);
    const rawDocument = message.raw_msg_id === null ? null : await ctx.store.raws.get(message.raw_msg_id);
    if (rawDocument !== null && !rawDocument.delivered) wrong.push(`${externalId}: its raw is not marked delivered`);
    if (raw === null || rawDocument === null) wrong.push(`${externalId}: no raw`);
    else if ((await mailContentHash(once(raw))) !== contentOf.get(externalId)) wrong.push(`${externalId}: its raw holds another mail`);
  }
  assert.equal(wrong, []);
});

test.run();
