import { test } from "uvu";
import * as assert from "uvu/assert";
import { actorKeyProblem, isSafeReplySubject, keyFromToken, MAX_REPLY_SUBJECT_LENGTH, Subjects, subjectToken } from "../../runtime/subjects.ts";

test("no namespace: subjects as the contract writes them", () => {
  const subjects = new Subjects();
  assert.is(subjects.wire("IMAPfetcher"), "IMAPfetcher");
  assert.is(subjects.actor("imap", "r1"), "caliopen.actor.imap.r1");
  assert.is(subjects.debug("nodes"), "caliopen.debug.nodes");
  assert.is(subjects.transitions("imap", "r1"), "caliopen.debug.transitions.imap.r1");
  assert.is(subjects.resource("caliopen_actor_snapshots"), "caliopen_actor_snapshots");
});

test("a namespace prefixes every subject and resource, so deployments can share a cluster", () => {
  const subjects = new Subjects("prod");
  assert.is(subjects.wire("IMAPfetcher"), "prod.IMAPfetcher");
  assert.is(subjects.local("prod.IMAPfetcher"), "IMAPfetcher");
  assert.is(subjects.actor("imap", "r1"), "prod.caliopen.actor.imap.r1");
  assert.is(subjects.deadLetter("keyAction"), "prod.caliopen.deadletter.keyAction");
  assert.is(subjects.resource("caliopen_actor_snapshots"), "prod_caliopen_actor_snapshots");
});

test("an invalid namespace is refused", () => {
  assert.throws(() => new Subjects("a.b"), /namespace/);
  assert.throws(() => new Subjects("a b"), /namespace/);
});

test("keys become single subject tokens, reversibly", () => {
  assert.is(subjectToken("3f2a-uuid_1"), "3f2a-uuid_1");
  for (const key of ["bob@example.com", "a.b", "*", ">", "with space", "é", "=x"]) {
    const token = subjectToken(key);
    assert.ok(/^[A-Za-z0-9_=-]+$/.test(token), `${key} → ${token}`);
    assert.is(keyFromToken(token), key);
  }
});

test("reply subjects the node may publish to: plain inboxes, nothing long, empty-tokened, wildcarded or with spaces", () => {
  for (const good of ["_INBOX.abc123.7", "$JS.ACK.stream.consumer.1.2.3.4.5", "x".repeat(MAX_REPLY_SUBJECT_LENGTH)]) assert.ok(isSafeReplySubject(good), good);
  for (const bad of [
    "",
    "x".repeat(MAX_REPLY_SUBJECT_LENGTH + 1),
    "_INBOX.a".padEnd(4090, "b"),
    "a..b",
    ".a",
    "a.",
    "a.*",
    "a.>",
    "a b",
    "a\tb",
    "a\u0000b",
    "é",
    "a.\ud800",
  ]) {
    assert.not.ok(isSafeReplySubject(bad), JSON.stringify(bad.slice(0, 20)));
  }
});

test("actor keys from the bus: non-empty, bounded, well-formed", () => {
  assert.is(actorKeyProblem("r1"), null);
  assert.is(actorKeyProblem("bob@example.com"), null);
  assert.match(String(actorKeyProblem("k".repeat(200_000))), /at most 128 characters/);
  assert.match(String(actorKeyProblem("a\ud800")), /well-formed/);
  assert.match(String(actorKeyProblem("")), /non-empty/);
  assert.match(String(actorKeyProblem(7)), /non-empty string/);
});

test.run();
