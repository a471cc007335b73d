import { jetstreamManager } from "@nats-io/jetstream";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { DurableIntake } from "../../runtime/durable-intake.ts";
import { EntryPoint, type EntryPointSpec, MAX_LAST_ERROR_LENGTH } from "../../runtime/entry-point.ts";
import { decodeJson, encodeJson } from "../../runtime/json.ts";
import { silentLogger } from "../../runtime/logger.ts";
import { OrderRefused, RetryLater } from "../../runtime/orders.ts";
import { ok } from "../../runtime/reply.ts";
import { waitFor } from "../../scripts/local-servers/wait.ts";
import { type RuntimeFixture, startRuntimeFixture } from "../helpers/runtime-fixture.ts";

const test = suite<{ fx: RuntimeFixture }>("entry point");

test.before(async (ctx) => {
  ctx.fx = await startRuntimeFixture("ns1");
});
test.after(async (ctx) => {
  await ctx.fx.stop();
});

const schema = { job_id: { type: "string", required: true }, size: { type: "number", required: false } } as const;

function entry(fx: RuntimeFixture, spec: Partial<EntryPointSpec> & Pick<EntryPointSpec, "orders">, subject = "jobs"): EntryPoint {
  const ep = new EntryPoint({ subject, queue: "workers", ...spec }, fx.nc, fx.subjects, fx.deadLetters, silentLogger());
  ep.start();
  return ep;
}

async function ask(fx: RuntimeFixture, subject: string, body: unknown): Promise<Record<string, unknown>> {
  const msg = await fx.nc.request(subject, encodeJson(body), { timeout: 2000 });
  const decoded = decodeJson(msg.data);
  if (!decoded.ok) throw new Error(decoded.error);
  return decoded.value as Record<string, unknown>;
}

/** A `run` request order whose handler records each payload it gets and answers "ran". */
function recordingRun(seen: unknown[]) {
  return {
    orders: {
      run: {
        mode: "request" as const,
        schema,
        handle: (payload: Record<string, unknown>) => {
          seen.push(payload);
          return ok("ran");
        },
      },
    },
  };
}

test("subscribes under the deployment namespace and hands valid orders to their handler", async ({ fx }) => {
  const seen: unknown[] = [];
  entry(
    fx,
    {
      orders: {
        run: {
          mode: "request",
          schema,
          handle: (payload) => {
            seen.push(payload);
            return ok("ran", { job: payload.job_id });
          },
        },
      },
    },
    "jobs1",
  );
  const reply = await ask(fx, "ns1.jobs1", { order: "run", job_id: "j1", other: "kept" });
  assert.equal(reply, { job: "j1", error: false, message: "ran" });
  assert.equal(seen, [{ order: "run", job_id: "j1", other: "kept" }]);
});

test("a handler that throws gives the requester an error reply", async ({ fx }) => {
  entry(fx, { orders: { run: { mode: "request", schema, handle: () => Promise.reject(new Error("disk on fire")) } } }, "jobs2");
  const reply = await ask(fx, "ns1.jobs2", { order: "run", job_id: "j" });
  assert.equal(reply, { error: true, message: "run failed: disk on fire" });
});

test("a published order sent with a reply inbox is acknowledged", async ({ fx }) => {
  entry(fx, { orders: { note: { mode: "publish", schema, handle: () => undefined } } }, "jobs3");
  const reply = await ask(fx, "ns1.jobs3", { order: "note", job_id: "j" });
  assert.equal(reply, { error: false, message: "note accepted" });
});

test("a failing published order is dead-lettered with the reason", async ({ fx }) => {
  entry(fx, { orders: { note: { mode: "publish", schema, handle: () => Promise.reject(new Error("store down")) } } }, "jobs4");
  fx.nc.publish("ns1.jobs4", encodeJson({ order: "note", job_id: "j" }));
  fx.nc.publish("ns1.jobs4", encodeJson({ order: "note", job_id: "j", size: "big" }));
  const letters = await waitFor("dead letters", async () => {
    const list = (await fx.deadLetters.list(20)).filter((l) => l.subject === "jobs4");
    return list.length === 2 ? list : null;
  });
  // Stored in the order they were refused: validation refuses at once, a handler fails later.
  const byReason = new Map(letters.map((l) => [l.reason, l.payload]));
  assert.equal([...byReason.keys()].sort(), ['invalid note order: field "size" must be a number, got the string "big"', "note failed: store down"]);
  assert.equal(byReason.get("note failed: store down"), { order: "note", job_id: "j" });
});

test("a durable order whose handler says RetryLater is offered again after a pause, then dead-lettered after its last attempt", async ({ fx }) => {
  const intake = await DurableIntake.open(fx.nc, fx.subjects, ["flaky"], 1);
  const attempts: number[] = [];
  let failUntil = 2;
  const ep = new EntryPoint(
    {
      subject: "flaky",
      queue: "workers",
      orders: {
        go: {
          mode: "publish",
          schema,
          handle: (payload) => {
            attempts.push(Date.now());
            if (payload.job_id === "recovers" && attempts.length > failUntil) return undefined;
            throw new RetryLater(`server down for ${String(payload.job_id)}`, 3);
          },
        },
      },
    },
    fx.nc,
    fx.subjects,
    fx.deadLetters,
    silentLogger(),
  );
  await ep.startDurable(await intake.consumer("flaky", "workers"));
  fx.nc.publish(fx.subjects.wire("flaky"), encodeJson({ order: "go", job_id: "recovers" }));
  await waitFor("handled on the third delivery", () => attempts.length === 3, 15_000, 50);
  assert.ok((attempts[1] as number) - (attempts[0] as number) >= 1_500, "after a pause");
  const letters = await fx.deadLetters.list(100);
  assert.not.ok(
    letters.some((l) => JSON.stringify(l.payload).includes("recovers")),
    "a recovered order is no dead letter",
  );

  attempts.length = 0;
  failUntil = Number.POSITIVE_INFINITY;
  fx.nc.publish(fx.subjects.wire("flaky"), encodeJson({ order: "go", job_id: "never" }));
  const letter = await waitFor(
    "dead letter after 3 attempts",
    async () => (await fx.deadLetters.list(100)).find((l) => JSON.stringify(l.payload).includes("never")),
    30_000,
    100,
  );
  assert.is(attempts.length, 3);
  assert.match(letter.reason, /server down for never/);
  await ep.stopTaking();
});

test("an orderField other than `order` can name the order", async ({ fx }) => {
  entry(fx, { orderField: "op", orders: { run: { mode: "request", schema, handle: () => ok("ran") } } }, "jobs5");
  assert.is((await ask(fx, "ns1.jobs5", { op: "run", job_id: "j" })).error, false);
  assert.match(String((await ask(fx, "ns1.jobs5", { order: "run", job_id: "j" })).message), /missing required field "op"/);
});

test("stopTaking lets the queue group give orders to another member; settled waits for running handlers", async ({ fx }) => {
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let finished = 0;
  const first = entry(
    fx,
    {
      orders: {
        run: {
          mode: "request",
          schema,
          handle: async () => {
            await gate;
            finished++;
            return ok("first");
          },
        },
      },
    },
    "jobs6",
  );
  const pending = ask(fx, "ns1.jobs6", { order: "run", job_id: "slow" });
  await waitFor("handler running", () => first.snapshotStats().inFlight === 1);
  await first.stopTaking();
  entry(fx, { orders: { run: { mode: "request", schema, handle: () => ok("second") } } }, "jobs6");
  assert.is((await ask(fx, "ns1.jobs6", { order: "run", job_id: "next" })).message, "second");
  const settled = first.settled();
  release();
  await settled;
  assert.is(finished, 1);
  assert.is((await pending).message, "first");
});

test("an order over the size or depth limit is refused naming the limit, without reaching its handler", async ({ fx }) => {
  const seen: unknown[] = [];
  entry(fx, recordingRun(seen), "jobs-limits");
  const big = await ask(fx, "ns1.jobs-limits", { order: "run", job_id: "j", filler: "x".repeat(70_000) });
  assert.is(big.error, true);
  assert.match(String(big.message), /over the limit of 65536 bytes/);
  const deepText = `{"order":"run","job_id":"j","deep":${"[".repeat(10_000)}${"]".repeat(10_000)}}`;
  const deep = decodeJson((await fx.nc.request("ns1.jobs-limits", new TextEncoder().encode(deepText), { timeout: 2000 })).data);
  assert.ok(deep.ok);
  assert.match(String((deep.value as { message: string }).message), /nested deeper than the limit of 32 levels/);
  assert.equal(seen, []);
});

test("OrderRefused: the requester gets the reason as an error, a published order becomes a dead letter; counted as rejected", async ({ fx }) => {
  const ep = entry(
    fx,
    { orders: { run: { mode: "publish", schema, handle: () => Promise.reject(new OrderRefused("run refused: no job j")) } } },
    "jobs-refused",
  );
  assert.equal(await ask(fx, "ns1.jobs-refused", { order: "run", job_id: "j" }), { error: true, message: "run refused: no job j" });
  fx.nc.publish("ns1.jobs-refused", encodeJson({ order: "run", job_id: "j", marker: "refused-1" }));
  const letter = await waitFor("dead letter", async () => (await fx.deadLetters.list(50)).find((l) => JSON.stringify(l.payload).includes("refused-1")));
  assert.is(letter.reason, "run refused: no job j");
  assert.equal([ep.snapshotStats().rejected, ep.snapshotStats().failed], [2, 0]);
});

test("the last error is kept (cut to a bound length) and handler time is summed, for service discovery", async ({ fx }) => {
  const ep = entry(
    fx,
    {
      orders: {
        run: {
          mode: "request",
          schema,
          handle: async (payload) => {
            await new Promise((resolve) => setTimeout(resolve, 20));
            if (payload.job_id === "bad") throw new Error("x".repeat(1_000));
            return ok("ran");
          },
        },
      },
    },
    "jobs-stats",
  );
  assert.is(ep.snapshotStats().lastError, null);
  await ask(fx, "ns1.jobs-stats", { order: "run", job_id: "j" });
  assert.is(ep.snapshotStats().lastError, null);
  assert.ok(ep.snapshotStats().processingMs >= 15, String(ep.snapshotStats().processingMs));
  await ask(fx, "ns1.jobs-stats", { order: "run", job_id: "bad" });
  assert.is(ep.snapshotStats().lastError, `run failed: ${"x".repeat(1_000)}`.slice(0, MAX_LAST_ERROR_LENGTH));
  await ask(fx, "ns1.jobs-stats", { order: "nope" });
  assert.match(String(ep.snapshotStats().lastError), /unknown order "nope"/);
  assert.ok(ep.snapshotStats().processingMs >= 35);
  assert.is(ep.durable, false);
});

test("a request whose reply subject could get the node's connection closed is dropped without a reply or any work", async ({ fx }) => {
  const seen: unknown[] = [];
  const ep = entry(fx, recordingRun(seen), "jobs-reply");
  const watcher = await fx.nats.connect();
  const hostile = `_INBOX.${"a".repeat(4_060)}`;
  const answers: unknown[] = [];
  watcher.subscribe(hostile, { callback: (_err, msg) => void answers.push(msg.data) });
  await watcher.flush();
  watcher.publish("ns1.jobs-reply", encodeJson({ order: "run", job_id: "j" }), { reply: hostile });
  await waitFor("request seen", () => ep.snapshotStats().rejected === 1);
  // The same connection still serves: a normal request is answered.
  assert.equal(await ask(fx, "ns1.jobs-reply", { order: "run", job_id: "k" }), { error: false, message: "ran" });
  assert.equal(answers, []);
  assert.equal(seen, [{ order: "run", job_id: "k" }]);
  assert.is(fx.nc.isClosed(), false);
});

test("durable: with slow handlers and a flood of orders, at most the bound run at once, the rest wait in JetStream (not taken, not redelivered), and every order is handled once", async ({
  fx,
}) => {
  const BOUND = 4;
  const ORDERS = 120;
  const intake = await DurableIntake.open(fx.nc, fx.subjects, ["flood"], 1);
  const consumer = await intake.consumer("flood", "workers");
  let running = 0;
  let most = 0;
  const handled: string[] = [];
  const ep = new EntryPoint(
    {
      subject: "flood",
      queue: "workers",
      orders: {
        go: {
          mode: "publish",
          schema,
          handle: async (payload) => {
            running += 1;
            most = Math.max(most, running);
            await new Promise((resolve) => setTimeout(resolve, 15));
            handled.push(String(payload.job_id));
            running -= 1;
            return undefined;
          },
        },
      },
    },
    fx.nc,
    fx.subjects,
    fx.deadLetters,
    silentLogger(),
    { maxConcurrent: BOUND },
  );
  await ep.startDurable(consumer);
  for (let n = 0; n < ORDERS; n++) fx.nc.publish(fx.subjects.wire("flood"), encodeJson({ order: "go", job_id: `j${n}` }));
  await fx.nc.flush();
  // While the flood drains, the node takes no more from the stream than it has free handlers.
  const jsm = await jetstreamManager(fx.nc);
  let mostAckPending = 0;
  let backlogSeen = 0;
  while (handled.length < ORDERS) {
    const info = await jsm.consumers.info(intake.stream, "workers_flood");
    mostAckPending = Math.max(mostAckPending, info.num_ack_pending);
    backlogSeen = Math.max(backlogSeen, info.num_pending);
    assert.ok(ep.snapshotStats().inFlight <= BOUND, `${ep.snapshotStats().inFlight} handlers running`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert.is(most, BOUND, "handlers ran up to the bound, never more");
  // The server may count an order whose ack it has not processed yet, never a whole batch taken ahead.
  assert.ok(mostAckPending <= 2 * BOUND, `${mostAckPending} orders taken from the stream at once`);
  assert.ok(backlogSeen > ORDERS / 2, `the backlog waited in the stream (${backlogSeen} seen pending there)`);
  assert.is(new Set(handled).size, ORDERS, "every order handled");
  assert.is(handled.length, ORDERS, "none twice");
  const info = await jsm.consumers.info(intake.stream, "workers_flood");
  assert.is(info.num_redelivered, 0, "nothing redelivered");
  assert.equal([ep.snapshotStats().busy, ep.snapshotStats().queued], [0, 0]);
  await ep.stopTaking();
});

test("core NATS: at most the bound run, as many wait their turn, the rest are answered busy; a published order beyond them is a dead letter saying so", async ({
  fx,
}) => {
  const BOUND = 3;
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let running = 0;
  let most = 0;
  const ep = new EntryPoint(
    {
      subject: "jobs-busy",
      queue: "workers",
      orders: {
        run: {
          mode: "request",
          schema,
          handle: async (payload) => {
            running++;
            most = Math.max(most, running);
            await gate;
            running--;
            return ok("ran", { job: payload.job_id });
          },
        },
        note: { mode: "publish", schema, handle: () => undefined },
      },
    },
    fx.nc,
    fx.subjects,
    fx.deadLetters,
    silentLogger(),
    { maxConcurrent: BOUND },
  );
  ep.start();
  const answers = Array.from({ length: 20 }, (_, n) => ask(fx, "ns1.jobs-busy", { order: "run", job_id: `j${n}` }));
  await waitFor("every request seen", () => ep.snapshotStats().received === 20);
  assert.equal([ep.snapshotStats().inFlight, ep.snapshotStats().queued, ep.snapshotStats().busy], [BOUND, BOUND, 20 - 2 * BOUND]);
  fx.nc.publish("ns1.jobs-busy", encodeJson({ order: "note", job_id: "busy-note" }));
  const letter = await waitFor("dead letter", async () => (await fx.deadLetters.list(100)).find((l) => JSON.stringify(l.payload).includes("busy-note")));
  assert.match(letter.reason, /^busy, try again: 3 orders of jobs-busy running on this node and as many waiting$/);
  release();
  const replies = await Promise.all(answers);
  assert.is(replies.filter((r) => r.error === false).length, 2 * BOUND, "the running and the waiting ones are handled");
  assert.equal(
    replies.filter((r) => r.error === true),
    Array.from({ length: 20 - 2 * BOUND }, () => ({ error: true, message: "busy, try again" })),
  );
  assert.is(most, BOUND);
  // Free again: the next request runs.
  assert.is((await ask(fx, "ns1.jobs-busy", { order: "run", job_id: "later" })).error, false);
});

test.run();
