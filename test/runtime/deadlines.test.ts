import { test } from "uvu";
import * as assert from "uvu/assert";
import { backoffDelay } from "../../runtime/backoff.ts";
import { clearDeadline, DeadlineTimers, readDeadlines, setDeadline } from "../../runtime/deadlines.ts";
import { sleep } from "../../scripts/local-servers/wait.ts";

test("deadlines are plain data in the context", () => {
  const set = setDeadline(undefined, "poll.due", 1000);
  assert.equal(set, { "poll.due": 1000 });
  assert.equal(clearDeadline(set, "poll.due"), {});
  assert.equal(readDeadlines({ deadlines: { a: 1, b: "x", c: NaN } }), { a: 1 });
  assert.equal(readDeadlines(null), {});
});

test("a timer fires once per deadline value, and moves when the deadline moves", async () => {
  const fired: string[] = [];
  const timers = new DeadlineTimers((event, at) => fired.push(`${event}@${at}`));
  const soon = Date.now() + 30;
  timers.sync({ deadlines: { a: soon } });
  timers.sync({ deadlines: { a: soon } });
  await sleep(80);
  assert.equal(fired, [`a@${soon}`]);
  const later = Date.now() + 30;
  timers.sync({ deadlines: { a: later } });
  await sleep(80);
  assert.equal(fired, [`a@${soon}`, `a@${later}`]);
  timers.clear();
});

test("a cleared deadline never fires; a past one fires at once", async () => {
  const fired: string[] = [];
  const timers = new DeadlineTimers((event) => fired.push(event));
  timers.sync({ deadlines: { gone: Date.now() + 30, past: Date.now() - 1000 } });
  timers.sync({ deadlines: { past: Date.now() - 1000 } });
  await sleep(60);
  assert.equal(fired, ["past"]);
  timers.clear();
});

test("backoff grows exponentially up to its cap, with bounded jitter", () => {
  const policy = { initialMs: 100, maxMs: 1000, factor: 2, jitter: 0 };
  assert.equal(
    [1, 2, 3, 4, 5, 6].map((n) => backoffDelay(policy, n)),
    [100, 200, 400, 800, 1000, 1000],
  );
  const jittered = backoffDelay({ ...policy, jitter: 0.5 }, 3, () => 1);
  assert.is(jittered, 200);
});

test.run();
