// How a sync groups the messages it fetches whole: imapflow reads a FETCH answer as fast as the server
// sends it, so one FETCH is what may wait in memory; it names at most WHOLE_FETCH_MESSAGES messages and
// WHOLE_FETCH_BYTES of announced sizes (a message alone over the bytes still goes, alone).
import { test } from "uvu";
import * as assert from "uvu/assert";
import { type MessageInfo, WHOLE_FETCH_BYTES, WHOLE_FETCH_MESSAGES, wholeFetches } from "../../../actors/imap/mailbox-sync.ts";

const MiB = 1024 * 1024;
const infos = (sizes: (number | null)[]): MessageInfo[] => sizes.map((size, index) => ({ uid: index + 1, size, flags: [], labels: [] }));
const groups = (sizes: (number | null)[]) => [...wholeFetches(infos(sizes))].map((group) => [...group.keys()]);

test("500 small messages: FETCHes of at most 64, every UID once, in order", () => {
  const fetched = groups(Array.from({ length: 500 }, () => 10_000));
  assert.ok(fetched.every((uids) => uids.length <= WHOLE_FETCH_MESSAGES));
  assert.is(fetched.length, Math.ceil(500 / WHOLE_FETCH_MESSAGES));
  assert.equal(
    fetched.flat(),
    Array.from({ length: 500 }, (_, i) => i + 1),
  );
});

test("500 messages of 1 MiB: FETCHes of at most 16 MiB announced", () => {
  const fetched = groups(Array.from({ length: 500 }, () => MiB));
  assert.ok(
    fetched.every((uids) => uids.length * MiB <= WHOLE_FETCH_BYTES),
    JSON.stringify(fetched.map((uids) => uids.length)),
  );
  assert.is(fetched.flat().length, 500);
});

test("sizes unknown count as nothing but the count still bounds the FETCH; no messages, no FETCH", () => {
  assert.ok(groups(Array.from({ length: 200 }, () => null)).every((uids) => uids.length <= WHOLE_FETCH_MESSAGES));
  assert.equal(groups([]), []);
});

test.run();
