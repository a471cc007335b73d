import { test } from "uvu";
import * as assert from "uvu/assert";
import { intervalMs, MIN_INTERVAL_MS, nextDue, nextScheduled, scheduleError, scheduleOf } from "../../../actors/identities/poll-schedule.ts";
import type { IdentityInfos } from "../../../actors/store/model.ts";

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

const at = (iso: string) => Date.parse(iso);

test("a poll schedule is a cron pattern of 5 fields, or 6 with seconds, that fires again", () => {
  for (const good of ["*/15 7-20 * * 1-5", "0 6 * * *", "*/3 * * * * *", "  0 12 1 * *  "]) assert.is(scheduleError(good), null, good);
  const bad: [string, RegExp][] = [
    ["every morning", /5 fields/],
    ["0 25 * * *", /not a cron pattern/],
    ["61 * * * *", /not a cron pattern/],
    ["0 0 30 2 *", /never fires/],
    ["0 0 0 1 1 * 2030", /5 fields/],
    [`0 ${"1,".repeat(200)}1 * * *`, /at most 128/],
  ];
  for (const [pattern, why] of bad) assert.match(scheduleError(pattern) ?? "", why, pattern);
  assert.is(scheduleOf({ poll_schedule: " 0 6 * * * " }), "0 6 * * *");
  // What the store holds may be anything (written by hand, by an older version): not a string is no schedule.
  const notAString: IdentityInfos = JSON.parse('{"poll_schedule":42}');
  for (const none of [{}, { poll_schedule: null }, { poll_schedule: "  " }, notAString]) assert.is(scheduleOf(none), null, JSON.stringify(none));
});

test("the next scheduled tick is the first time the pattern names after now, in UTC", () => {
  const weekdays = "*/15 7-20 * * 1-5";
  // Friday 2026-11-27 20:50 UTC: the last tick of the day has passed; Saturday and Sunday are skipped.
  assert.is(nextScheduled(weekdays, at("2026-11-27T20:50:00Z")), at("2026-11-30T07:00:00Z"));
  assert.is(nextScheduled(weekdays, at("2026-11-30T07:00:00Z")), at("2026-11-30T07:15:00Z"), "exactly due: the following one");
  assert.is(nextScheduled(weekdays, at("2026-11-30T09:01:00Z")), at("2026-11-30T09:15:00Z"), "late: the next one, not a burst");
  assert.is(nextScheduled("0 0 30 2 *", at("2026-11-30T09:01:00Z")), null, "never");
  assert.is(nextScheduled("not cron", at("2026-11-30T09:01:00Z")), null);
});

test("the tick after one just done is after it, even on a node whose clock is behind", () => {
  // The tick due at 10:00 was done by a node 30 s ahead; this node's clock says 09:59:30.
  assert.is(nextScheduled("*/15 * * * *", at("2026-11-30T09:59:30Z"), at("2026-11-30T10:00:00Z")), at("2026-11-30T10:15:00Z"));
  assert.is(nextScheduled("*/15 * * * *", at("2026-11-30T10:20:00Z"), at("2026-11-30T10:00:00Z")), at("2026-11-30T10:30:00Z"), "late: the next one");
});

test.run();
