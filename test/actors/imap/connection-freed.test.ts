// A sync gives its connection back as soon as every body is fetched: the watch can IDLE again while the
// last imports finish (an import waits for the user's inbound actor, which after a failover may be
// busy restoring hundreds of others). The cursor still only moves once they are imported.
import type { ImapFlow } from "imapflow";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { type FetchedMessage, syncMailbox } from "../../../actors/imap/mailbox-sync.ts";
import { PASSWORD, startTestDovecot, type TestDovecot } from "../../../scripts/local-servers/dovecot.ts";
import { waitFor } from "../../../scripts/local-servers/wait.ts";

const test = suite<{ dovecot: TestDovecot; client: ImapFlow }>("connection freed once fetched");

const mail = (n: number) => `From: a@example.org\r\nTo: b@example.org\r\nSubject: ${n}\r\nMessage-ID: <freed-${n}@example.org>\r\n\r\nbody ${n}\r\n`;

test.before(async (ctx) => {
  ctx.dovecot = await startTestDovecot();
  for (let n = 1; n <= 3; n++) await ctx.dovecot.append("freed", PASSWORD, mail(n));
  ctx.client = await ctx.dovecot.client("freed", PASSWORD);
});
test.after(async (ctx) => ctx.dovecot.stop());

test("the mailbox is free for other commands while imports are still running; the cursor moves after them", async ({ client }) => {
  const imported: number[] = [];
  let letImportsFinish!: () => void;
  const gate = new Promise<void>((resolve) => (letImportsFinish = resolve));
  let fetchedWhilePending: number | null = null;
  const cursors: number[] = [];
  const sync = syncMailbox(
    client,
    { uidvalidity: null, lastseenuid: 0, failed_uids: [] },
    {
      mailbox: "INBOX",
      full: false,
      concurrency: 8,
      maxMessageBytes: 1024 * 1024,
      importMessage: async (message: FetchedMessage) => {
        await gate;
        imported.push(message.uid);
      },
      onProgress: (_progress, cursor) => cursors.push(cursor.lastseenuid),
      fetched: () => (fetchedWhilePending = imported.length),
    },
  );
  await waitFor("every body fetched", () => fetchedWhilePending !== null, 10_000);
  assert.is(fetchedWhilePending, 0, "told before any import finished");
  // What the watch does to go back to IDLE: take the mailbox. It must not wait for the imports.
  const lock = await Promise.race([
    client.getMailboxLock("INBOX"),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error("the mailbox is still held by the sync")), 3_000)),
  ]);
  lock.release();
  assert.ok(
    cursors.every((uid) => uid === 0),
    "the cursor has not moved past unimported mail",
  );
  letImportsFinish();
  const outcome = await sync;
  assert.equal(imported.sort(), [1, 2, 3]);
  assert.is(outcome.done, 3);
  assert.is(outcome.cursor.lastseenuid, 3);
});

test.run();
