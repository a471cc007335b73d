import { Writable } from "node:stream";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { ActorHost } from "../../runtime/actor-host.ts";
import { decodeJson, encodeJson } from "../../runtime/json.ts";
import { createLogger } from "../../runtime/logger.ts";
import { sleep, waitFor } from "../../scripts/local-servers/wait.ts";
import { counterFamily } from "../helpers/counter-family.ts";
import { repeatedKeys } from "../helpers/repeated-keys.ts";
import { type RuntimeFixture, startRuntimeFixture } from "../helpers/runtime-fixture.ts";

const test = suite<{ fx: RuntimeFixture }>("actor host");

test.before(async (ctx) => {
  ctx.fx = await startRuntimeFixture();
});
test.after(async (ctx) => {
  await ctx.fx.stop();
});

const reply = (data: Uint8Array) => {
  const decoded = decodeJson(data);
  if (!decoded.ok) throw new Error(decoded.error);
  return decoded.value as Record<string, unknown>;
};

test("an actor is addressed by its own subject and answers requests through the reply inbox", async ({ fx }) => {
  const host = fx.newHost();
  host.register(counterFamily("c1"));
  const cell = await host.activate("c1", "alice");
  assert.is(cell.subject, "caliopen.actor.c1.alice");
  fx.nc.publish(cell.subject, encodeJson({ type: "inc", payload: { by: 2 } }));
  fx.nc.publish(cell.subject, encodeJson({ type: "inc", by: 3 }));
  const answer = reply((await fx.nc.request(cell.subject, encodeJson({ type: "get" }), { timeout: 2000 })).data);
  assert.equal(answer, { error: false, message: "count", count: 5 });
});

test("keys that are not subject-safe are encoded, and still reachable", async ({ fx }) => {
  const host = fx.newHost();
  host.register(counterFamily("c2"));
  const cell = await host.activate("c2", "bob@example.com");
  assert.not.ok(cell.subject.includes("@"));
  const answer = reply((await fx.nc.request(cell.subject, encodeJson({ type: "get" }), { timeout: 2000 })).data);
  assert.is(answer.count, 0);
});

test("a request the actor does not take, or not in its current state, gets an error reply, not silence", async ({ fx }) => {
  const host = fx.newHost();
  host.register(counterFamily("c3"));
  const cell = await host.activate("c3", "k");
  const answer = reply((await fx.nc.request(cell.subject, encodeJson({ type: "fly" }), { timeout: 2000 })).data);
  assert.is(answer.error, true);
  assert.match(String(answer.message), /c3 actors do not take "fly" from the bus \(they take: inc, get, sync, work, schedule, finish\)/);
  cell.receive({ type: "work", payload: { ms: 2_000 } });
  const busy = reply((await fx.nc.request(cell.subject, encodeJson({ type: "get" }), { timeout: 2000 })).data);
  assert.is(busy.error, true);
  assert.match(String(busy.message), /does not accept "get" in state "working"/);
  const malformed = reply((await fx.nc.request(cell.subject, new TextEncoder().encode("{nope"), { timeout: 2000 })).data);
  assert.is(malformed.error, true);
  assert.match(String(malformed.message), /invalid JSON/);
});

test("an exception inside an actor crashes that actor only, and is reported", async ({ fx }) => {
  const crashes: string[] = [];
  const host = fx.newHost();
  host.register(counterFamily("c4"), { onCrash: (cell, err) => crashes.push(`${cell.key}: ${err.message}`), onFenced: () => undefined });
  const a = await host.activate("c4", "a");
  const b = await host.activate("c4", "b");
  a.receive({ type: "crash", payload: {} });
  await waitFor("crash report", () => crashes.length === 1);
  assert.is(a.status, "crashed");
  assert.match(a.lastError?.message ?? "", /boom/);
  assert.is(b.status, "running");
  const answer = reply((await fx.nc.request(b.subject, encodeJson({ type: "get" }), { timeout: 2000 })).data);
  assert.is(answer.error, false);
});

test("an error in an actor's asynchronous work crashes that actor too, not the node", async ({ fx }) => {
  const crashes: string[] = [];
  const host = fx.newHost();
  host.register(counterFamily("c4b"), { onCrash: (_cell, err) => crashes.push(err.message), onFenced: () => undefined });
  const cell = await host.activate("c4b", "a");
  cell.receive({ type: "failAsync", payload: {} });
  await waitFor("crash report", () => crashes.length === 1);
  assert.equal(crashes, ["async boom (asked to fail)"]);
  assert.is(cell.status, "crashed");
});

test("a crashed actor restarts from its last settled snapshot and gets the messages sent meanwhile", async ({ fx }) => {
  const host = fx.newHost();
  host.register(counterFamily("c5"), { onCrash: () => undefined, onFenced: () => undefined });
  const cell = await host.activate("c5", "k");
  cell.receive({ type: "inc", payload: { by: 7 } });
  cell.receive({ type: "crash", payload: {} });
  cell.receive({ type: "inc", payload: { by: 1 } });
  assert.is(cell.status, "crashed");
  cell.restart();
  assert.is(cell.status, "running");
  assert.is(cell.restarts, 1);
  const answer = reply((await fx.nc.request(cell.subject, encodeJson({ type: "get" }), { timeout: 2000 })).data);
  assert.is(answer.count, 8);
});

test("the snapshot is saved after transitions and restored when the actor starts again", async ({ fx }) => {
  const first = fx.newHost("node-a");
  first.register(counterFamily("c6"));
  const cell = await first.activate("c6", "persisted");
  cell.receive({ type: "inc", payload: { by: 41 } });
  await waitFor("snapshot saved", async () => {
    const stored = await fx.snapshots.load("c6", "persisted");
    return (stored?.record.snapshot as { context?: { count?: number } } | undefined)?.context?.count === 41;
  });
  await first.stop("c6", "persisted");

  const second = fx.newHost("node-b");
  second.register(counterFamily("c6"));
  const restored = await second.activate("c6", "persisted");
  restored.receive({ type: "inc", payload: {} });
  const answer = reply((await fx.nc.request(restored.subject, encodeJson({ type: "get" }), { timeout: 2000 })).data);
  assert.is(answer.count, 42);
});

test("a context saved by an earlier release is read through the family's upgradeContext when the actor is restored", async ({ fx }) => {
  const first = fx.newHost("node-a");
  first.register(counterFamily("c6u"));
  const cell = await first.activate("c6u", "old");
  cell.receive({ type: "inc", payload: { by: 5 } });
  await waitFor("snapshot saved", async () => {
    const stored = await fx.snapshots.load("c6u", "old");
    return (stored?.record.snapshot as { context?: { count?: number } } | undefined)?.context?.count === 5;
  });
  await first.stop("c6u", "old");
  // The earlier release kept the count under another name.
  const stored = await fx.snapshots.load("c6u", "old");
  const snapshot = stored!.record.snapshot as { context: Record<string, unknown> };
  const { count, ...rest } = snapshot.context;
  snapshot.context = { ...rest, total: count };
  await fx.snapshots.save(stored!.record, stored!.revision);

  const second = fx.newHost("node-b");
  second.register({
    ...counterFamily("c6u"),
    upgradeContext: ({ total, ...saved }) => (total === undefined ? saved : { ...saved, count: total }),
  });
  const restored = await second.activate("c6u", "old");
  assert.is((restored.inspect().context as { count?: number }).count, 5, "the upgraded context is what the machine runs with");
  restored.receive({ type: "inc", payload: {} });
  const answer = reply((await fx.nc.request(restored.subject, encodeJson({ type: "get" }), { timeout: 2000 })).data);
  assert.is(answer.count, 6);
});

test("a pending deadline survives a restart: it is re-armed from the snapshot and fires once", async ({ fx }) => {
  const fired = fx.nc.subscribe("test.fired");
  const first = fx.newHost("node-a");
  first.register(counterFamily("c7"));
  const cell = await first.activate("c7", "timer");
  const at = Date.now() + 600;
  cell.receive({ type: "schedule", payload: { at } });
  await waitFor(
    "deadline saved",
    async () =>
      Object.keys((await fx.snapshots.load("c7", "timer"))?.record.snapshot ?? {}).length > 0 && (await fx.snapshots.load("c7", "timer"))?.record.snapshot,
  );
  await first.stop("c7", "timer");

  const second = fx.newHost("node-b");
  second.register(counterFamily("c7"));
  const restored = await second.activate("c7", "timer");
  assert.equal(Object.keys(restored.summary().deadlines), ["tick.due"]);
  const received: number[] = [];
  void (async () => {
    for await (const msg of fired) received.push(Number((reply(msg.data) as { at: number }).at));
  })();
  await waitFor("deadline fired", () => received.length === 1, 3000);
  assert.ok(Date.now() >= at, "not before its deadline");
  const answer = reply((await fx.nc.request(restored.subject, encodeJson({ type: "get" }), { timeout: 2000 })).data);
  assert.is(answer.error, false);
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(received, [at], "fired exactly once");
  assert.equal(restored.summary().deadlines, {});
  fired.unsubscribe();
});

test("a deadline already past when the actor is restored fires at once", async ({ fx }) => {
  const first = fx.newHost("node-a");
  first.register(counterFamily("c8"));
  const cell = await first.activate("c8", "late");
  cell.receive({ type: "schedule", payload: { at: Date.now() + 60_000 } });
  await waitFor("deadline saved", async () => (await fx.snapshots.load("c8", "late")) !== null);
  await first.stop("c8", "late");
  // The node was down past the deadline: rewrite the stored deadline into the past.
  const stored = await fx.snapshots.load("c8", "late");
  const snapshot = stored!.record.snapshot as { context: { deadlines: Record<string, number> } };
  snapshot.context.deadlines["tick.due"] = Date.now() - 5_000;
  await fx.snapshots.save(stored!.record, stored!.revision);

  const second = fx.newHost("node-b");
  second.register(counterFamily("c8"));
  const restored = await second.activate("c8", "late");
  await waitFor("late deadline fired", () => restored.summary().deadlines["tick.due"] === undefined, 2000);
});

test("a deadline that comes due while the actor is busy is delivered once it can take it, not dropped", async ({ fx }) => {
  const host = fx.newHost();
  host.register(counterFamily("c8b"));
  const cell = await host.activate("c8b", "busy");
  const fired: unknown[] = [];
  const sub = fx.nc.subscribe("test.fired", { callback: (_err, msg) => void fired.push(decodeJson(msg.data)) });
  const at = Date.now() + 100;
  cell.receive({ type: "schedule", payload: { at } });
  // Busy for 600 ms: the deadline comes due in a state that does not take it.
  cell.receive({ type: "work", payload: { ms: 600 } });
  await sleep(300);
  assert.equal(fired, [], "not delivered while working");
  assert.is(cell.summary().state, "working");
  await waitFor("fired after the work", () => fired.length === 1, 3000);
  assert.equal(cell.summary().deadlines, {});
  await sleep(200);
  assert.is(fired.length, 1, "fired once");
  sub.unsubscribe();
  const letters = await fx.deadLetters.list(50);
  assert.not.ok(
    letters.some((l) => l.subject === cell.subject),
    "no dead letter for the deadline",
  );
});

test("a published message the actor cannot take is kept as a dead letter", async ({ fx }) => {
  const host = fx.newHost();
  host.register(counterFamily("c9"));
  const cell = await host.activate("c9", "k");
  fx.nc.publish(cell.subject, encodeJson({ type: "unknown-event" }));
  fx.nc.publish(cell.subject, encodeJson({ no: "type" }));
  const letters = await waitFor("dead letters", async () => {
    const list = await fx.deadLetters.list(10);
    return list.filter((l) => l.subject === cell.subject).length === 2 ? list : null;
  });
  assert.ok(letters.some((l) => /do not take "unknown-event" from the bus/.test(l.reason)));
  assert.ok(letters.some((l) => /string "type"/.test(l.reason)));
});

test("internal events sent on the actor's subject change nothing: deadlines, runtime notices, crash orders are refused", async ({ fx }) => {
  const host = fx.newHost();
  const crashes: string[] = [];
  host.register(counterFamily("c9b"), { onCrash: (_cell, err) => crashes.push(err.message), onFenced: () => undefined });
  const cell = await host.activate("c9b", "k");
  cell.receive({ type: "inc", payload: { by: 5 } });
  const before = cell.inspect().context;
  const forged = [
    { type: "tick.due", payload: { at: 123 } },
    { type: "reloaded", payload: {} },
    { type: "crash", payload: {} },
    { type: "failAsync", payload: {} },
  ];
  for (const message of forged) {
    const answer = reply((await fx.nc.request(cell.subject, encodeJson(message), { timeout: 2000 })).data);
    assert.is(answer.error, true, message.type);
    assert.match(String(answer.message), new RegExp(`do not take "${message.type}" from the bus`));
    fx.nc.publish(cell.subject, encodeJson({ ...message, marker: `forged-${message.type}` }));
  }
  await waitFor(
    "forged messages dead-lettered",
    async () => (await fx.deadLetters.list(100)).filter((l) => l.subject === cell.subject).length === forged.length,
  );
  assert.equal(cell.inspect().context, before, "nothing changed");
  assert.is(cell.status, "running");
  assert.equal(crashes, []);
  // The same events from inside the node still work.
  cell.receive({ type: "tick.due", payload: { at: 7 } });
  assert.equal((cell.inspect().context as { fired: number[] }).fired, [7]);
});

test("a message from the bus must pass its declared payload schema; a family that declares nothing takes nothing", async ({ fx }) => {
  const host = fx.newHost();
  host.register(counterFamily("c9c"));
  host.register({ ...counterFamily("c9d"), accepts: undefined });
  const cell = await host.activate("c9c", "k");
  const bad = reply((await fx.nc.request(cell.subject, encodeJson({ type: "schedule", payload: { at: "soon" } }), { timeout: 2000 })).data);
  assert.equal(bad, { error: true, message: 'invalid schedule for a c9c actor: field "at" must be a number, got the string "soon"' });
  assert.equal(cell.inspect().context, { key: "k", count: 0, fired: [], password: "[redacted]", deadlines: {} });
  const closed = await host.activate("c9d", "k");
  const refused = reply((await fx.nc.request(closed.subject, encodeJson({ type: "get" }), { timeout: 2000 })).data);
  assert.equal(refused, { error: true, message: 'c9d actors take no messages from the bus ("get" refused)' });
});

test("bus input to a mailbox is bounded: an oversized or too deeply nested message is refused naming the limit", async ({ fx }) => {
  const host = fx.newHost();
  host.register(counterFamily("c9e"));
  const cell = await host.activate("c9e", "k");
  const big = reply((await fx.nc.request(cell.subject, encodeJson({ type: "inc", payload: { pad: "x".repeat(70_000) } }), { timeout: 2000 })).data);
  assert.match(String(big.message), /over the limit of 65536 bytes/);
  const deepText = `{"type":"inc","payload":{"by":1,"deep":${"[".repeat(10_000)}${"]".repeat(10_000)}}}`;
  const deep = reply((await fx.nc.request(cell.subject, new TextEncoder().encode(deepText), { timeout: 2000 })).data);
  assert.match(String(deep.message), /nested deeper than the limit of 32 levels/);
  assert.is((cell.inspect().context as { count: number }).count, 0);
  const tooLong = await host.activate("c9e", "k".repeat(1_000)).then(
    () => "started",
    (err: Error) => err.message,
  );
  assert.match(tooLong, /at most 128 characters/);
});

test("inspect shows the context with secrets redacted", async ({ fx }) => {
  const host = fx.newHost();
  host.register(counterFamily("c10"));
  const cell = await host.activate("c10", "k");
  const inspected = cell.inspect() as { context: { password: string; count: number } };
  assert.is(inspected.context.password, "[redacted]");
  assert.is(inspected.context.count, 0);
});

test("stop with forget drops the snapshot; without forget it is kept", async ({ fx }) => {
  const host = fx.newHost();
  host.register(counterFamily("c11"));
  (await host.activate("c11", "keep")).receive({ type: "inc", payload: {} });
  (await host.activate("c11", "drop")).receive({ type: "inc", payload: {} });
  await waitFor("both saved", async () => (await fx.snapshots.load("c11", "keep")) !== null && (await fx.snapshots.load("c11", "drop")) !== null);
  await host.stop("c11", "keep");
  await host.stop("c11", "drop", { forget: true });
  assert.ok(await fx.snapshots.load("c11", "keep"));
  assert.is(await fx.snapshots.load("c11", "drop"), null);
});

test("a snapshot written by someone else fences the actor off", async ({ fx }) => {
  const fenced: string[] = [];
  const host = fx.newHost();
  host.register(counterFamily("c12"), { onCrash: () => undefined, onFenced: (cell) => fenced.push(cell.key) });
  const cell = await host.activate("c12", "contested");
  cell.receive({ type: "inc", payload: {} });
  await waitFor("saved", async () => (await fx.snapshots.load("c12", "contested")) !== null);
  const stored = await fx.snapshots.load("c12", "contested");
  await fx.snapshots.save({ ...stored!.record, node: "intruder", owner: "intruder-process" }, stored!.revision);
  cell.receive({ type: "inc", payload: {} });
  await waitFor("fenced", () => fenced.length === 1);
});

test("a delivered message settles 'done' only once the state it produced is saved", async ({ fx }) => {
  const host = fx.newHost();
  host.register(counterFamily("c13"));
  const cell = await host.activate("c13", "acked");
  const outcomes: string[] = [];
  const storedAtSettle: (number | undefined)[] = [];
  for (let i = 1; i <= 5; i++) {
    cell.receive({ type: "inc", payload: {} }, (outcome) => {
      outcomes.push(outcome);
      void fx.snapshots
        .load("c13", "acked")
        .then((stored) => storedAtSettle.push((stored?.record.snapshot as { context: { count: number } } | undefined)?.context.count));
    });
  }
  await waitFor("all settled", () => storedAtSettle.length === 5);
  assert.equal(outcomes, ["done", "done", "done", "done", "done"]);
  assert.ok(
    storedAtSettle.every((count) => count === 5),
    `saved state when settled: ${storedAtSettle.join(",")}`,
  );
});

test("a message that changes nothing settles at once; one refused settles 'done' after being dead-lettered", async ({ fx }) => {
  const host = fx.newHost();
  host.register(counterFamily("c14"));
  const cell = await host.activate("c14", "k");
  await waitFor("initial snapshot saved", async () => (await fx.snapshots.load("c14", "k")) !== null);
  const outcomes: string[] = [];
  cell.receive({ type: "get", payload: {} }, (outcome) => outcomes.push(`get:${outcome}`));
  cell.receive({ type: "nonsense", payload: {} }, (outcome) => outcomes.push(`nonsense:${outcome}`));
  await waitFor("both settled", () => outcomes.length === 2, 500);
  assert.equal(outcomes.sort(), ["get:done", "nonsense:done"]);
});

test("messages a stopping actor never handled settle 'retry', for the next owner", async ({ fx }) => {
  const host = fx.newHost();
  host.register(counterFamily("c15"), { onCrash: () => undefined, onFenced: () => undefined });
  const cell = await host.activate("c15", "k");
  cell.receive({ type: "crash", payload: {} });
  const outcomes: string[] = [];
  cell.receive({ type: "inc", payload: {} }, (outcome) => outcomes.push(outcome));
  await host.stop("c15", "k");
  cell.receive({ type: "inc", payload: {} }, (outcome) => outcomes.push(outcome));
  assert.equal(outcomes, ["retry", "retry"]);
});

test("a fenced write settles its messages 'retry'", async ({ fx }) => {
  const host = fx.newHost();
  host.register(counterFamily("c16"), { onCrash: () => undefined, onFenced: () => undefined });
  const cell = await host.activate("c16", "k");
  await waitFor("saved", async () => (await fx.snapshots.load("c16", "k")) !== null);
  const stored = await fx.snapshots.load("c16", "k");
  await fx.snapshots.save({ ...stored!.record, node: "new-owner", owner: "new-owner-process" }, stored!.revision);
  const outcomes: string[] = [];
  cell.receive({ type: "inc", payload: {} }, (outcome) => outcomes.push(outcome));
  await waitFor("settled", () => outcomes.length === 1);
  assert.equal(outcomes, ["retry"]);
});

test("a write that landed but whose answer was lost is recognised as our own, not taken for a rival's", async ({ fx }) => {
  const fenced: string[] = [];
  const host = fx.newHost();
  host.register(counterFamily("c17"), { onCrash: () => undefined, onFenced: (cell) => fenced.push(cell.key) });
  const cell = await host.activate("c17", "k");
  cell.receive({ type: "inc", payload: {} });
  await waitFor("saved", async () => (await fx.snapshots.load("c17", "k")) !== null);
  // What a timed-out update leaves behind: our own record stored under a revision we never learnt.
  const stored = await fx.snapshots.load("c17", "k");
  await fx.snapshots.save({ ...stored!.record, savedAt: new Date().toISOString() }, stored!.revision);
  const outcomes: string[] = [];
  cell.receive({ type: "inc", payload: { by: 5 } }, (outcome) => outcomes.push(outcome));
  await waitFor("settled", () => outcomes.length === 1, 5_000);
  assert.equal(outcomes, ["done"]);
  assert.equal(fenced, []);
  const saved = await fx.snapshots.load("c17", "k");
  assert.is((saved!.record.snapshot as { context: { count: number } }).context.count, 6);
});

test("a redelivered order is acknowledged only once the state that reflects it is saved", async ({ fx }) => {
  const host = fx.newHost();
  host.register(counterFamily("c18"));
  const cell = await host.activate("c18", "k");
  const outcomes: string[] = [];
  cell.receive({ type: "inc", payload: {}, id: "order-1" }, (outcome) => outcomes.push(`first:${outcome}`));
  // Redelivered before the first write completed: it must wait for that write, not be acked at once.
  cell.receive({ type: "inc", payload: {}, id: "order-1" }, (outcome) => outcomes.push(`again:${outcome}`));
  assert.equal(outcomes, []);
  await waitFor("both settled", () => outcomes.length === 2);
  const saved = await fx.snapshots.load("c18", "k");
  assert.is((saved!.record.snapshot as { context: { count: number } }).context.count, 1, "applied once");
  assert.equal(saved!.record.seen, ["order-1"]);
});

test("each transition is published with the event that caused it, or as internal", async ({ fx }) => {
  const host = fx.newHost();
  host.register(counterFamily("c19"));
  const cell = await host.activate("c19", "k");
  const seen: string[] = [];
  const subscription = fx.nc.subscribe(fx.subjects.transitions("c19", "k"), {
    callback: (_err, msg) => {
      const decoded = decodeJson(msg.data);
      if (decoded.ok) {
        const t = decoded.value as { from: unknown; to: unknown; event: string };
        seen.push(`${String(t.from)}→${String(t.to)} [${t.event}]`);
      }
    },
  });
  await fx.nc.flush();
  cell.receive({ type: "work", payload: { ms: 30 } });
  await waitFor("back to idle", () => seen.length === 2, 2000);
  assert.equal(seen, ["idle→working [work]", "working→idle [(internal)]"]);
  subscription.unsubscribe();
});

test("an idle actor can be passivated: its machine is dropped and comes back, state intact, on the next message", async ({ fx }) => {
  const host = fx.newHost();
  host.register(counterFamily("c20", "none"));
  const cell = await host.activate("c20", "sleepy");
  cell.receive({ type: "inc", payload: { by: 3 } });
  assert.is(host.passivateIdle(60_000), 0, "not idle long enough");
  assert.is(host.passivateIdle(0), 1);
  assert.ok(cell.passivated);
  const inspected = cell.inspect() as { state: string; passivated: boolean; context: { count: number; password: string } };
  assert.equal([inspected.state, inspected.passivated, inspected.context.count, inspected.context.password], ["idle", true, 3, "[redacted]"]);
  const answer = reply((await fx.nc.request(cell.subject, encodeJson({ type: "get" }), { timeout: 2000 })).data);
  assert.is(answer.count, 3);
  assert.not.ok(cell.passivated, "revived by the message");
});

test("a busy actor is not passivated; a passivated actor's deadline still fires", async ({ fx }) => {
  const host = fx.newHost();
  host.register(counterFamily("c21"));
  const busy = await host.activate("c21", "busy");
  busy.receive({ type: "work", payload: { ms: 200 } });
  const sleeper = await host.activate("c21", "sleeper");
  sleeper.receive({ type: "schedule", payload: { at: Date.now() + 150 } });
  assert.is(host.passivateIdle(0), 1, "only the idle one");
  assert.ok(sleeper.passivated);
  assert.not.ok(busy.passivated);
  await waitFor("deadline fired on the passivated actor", () => sleeper.summary().deadlines["tick.due"] === undefined && !sleeper.passivated, 2000);
});

test("an actor's log lines name its kind once (its logger carries it)", async ({ fx }) => {
  let written = "";
  const destination = new Writable({
    write(chunk, _encoding, done) {
      written += String(chunk);
      done();
    },
  });
  const logger = createLogger({ level: "debug", destination, format: "json" });
  const host = new ActorHost({ nc: fx.nc, subjects: fx.subjects, nodeId: "logging", logger, snapshots: fx.snapshots, deadLetters: fx.deadLetters });
  host.register(counterFamily("c-log"));
  await host.activate("c-log", "k");
  await host.stop("c-log", "k");
  const lines = written.trimEnd().split("\n");
  const stopped = lines.find((line) => line.includes('"msg":"actor stopped"'));
  assert.ok(stopped, written);
  assert.match(stopped, /"kind":"c-log"/);
  for (const line of lines) assert.equal(repeatedKeys(line), [], line);
});

test.run();
