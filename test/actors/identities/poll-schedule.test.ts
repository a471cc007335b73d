import { test } from "uvu";
import * as assert from "uvu/assert";
import { intervalMs, MIN_INTERVAL_MS, nextDue } from "../../../actors/identities/poll-schedule.ts";

test("intervals are minutes written as decimal strings, clamped to 1 s … 3 days", () => {
  assert.is(intervalMs("15"), 15 * 60_000);
  assert.is(intervalMs("0.5"), 30_000);
  assert.is(intervalMs("0.0001"), MIN_INTERVAL_MS);
  assert.is(intervalMs("99999"), 4_320 * 60_000);
  for (const bad of ["", "0", "-5", "often", "1e3", null, undefined]) assert.is(intervalMs(bad), null, String(bad));
});

test("the next tick is on the grid of the previous one, and never in the past", () => {
  assert.is(nextDue(1_000, 100, 1_050), 1_100, "on time: one interval later");
  assert.is(nextDue(1_000, 100, 1_100), 1_200, "exactly due: the following one");
  assert.is(nextDue(1_000, 100, 1_555), 1_600, "late by several intervals: the next grid point, not a burst");
});

test.run();
