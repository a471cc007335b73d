// The bridges' polling slow-down: what interval they ask for, and that they ask for the old one back.
import { test } from "uvu";
import * as assert from "uvu/assert";
import { askPollInterval, restorePollInterval, slowerInterval } from "../../../actors/bridges/poll-slowdown.ts";

test("twice the interval, within 1 … 4320 minutes; the protocol's default when the interval is not one", () => {
  assert.is(slowerInterval("15", "imap"), "30");
  assert.is(slowerInterval("0.2", "imap"), "1", "at least a minute");
  assert.is(slowerInterval("4000", "twitter"), "4320", "at most three days");
  assert.is(slowerInterval("often", "imap"), "30", "IMAP's default is 15");
  assert.is(slowerInterval(null, "twitter"), "4", "Twitter's default is 2");
  assert.is(slowerInterval("-3", "twitter"), "4");
});

test("update_interval is the contract's order; the interval before the slow-down is asked back, and nothing when there was none", () => {
  const sent: [string, unknown][] = [];
  const ports = { publish: (subject: string, payload: unknown) => sent.push([subject, payload]) };
  const worker = { identity_id: "i-1", user_id: "u-1", slowed_from: null };
  askPollInterval(ports, "imap", worker, "30");
  restorePollInterval(ports, "imap", worker);
  restorePollInterval(ports, "twitter", { ...worker, slowed_from: "2" });
  assert.equal(sent, [
    ["identitiesWorker", { order: "update_interval", identity_id: "i-1", user_id: "u-1", poll_intervall: "30", protocol: "imap" }],
    ["identitiesWorker", { order: "update_interval", identity_id: "i-1", user_id: "u-1", poll_intervall: "2", protocol: "twitter" }],
  ]);
});

test.run();
