import { test } from "uvu";
import * as assert from "uvu/assert";
import { keyFromToken, Subjects, subjectToken } from "../../runtime/subjects.ts";

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

test.run();
