import { spawn, spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { terminalSafe } from "../../scripts/cli/terminal-text.ts";
import { nodeLines } from "../../scripts/cli/top-snapshot.ts";
import { renderTop } from "../../scripts/cli/top-view.ts";
import { waitFor } from "../../scripts/local-servers/wait.ts";
import type { RunningNode } from "../../supervisors/node.ts";
import { type CliResult, startCli } from "../helpers/cli-process.ts";
import { counterFamily } from "../helpers/counter-family.ts";
import { startTestNats, type TestNats } from "../helpers/nats-server.ts";
import { startTestNode } from "../helpers/test-node.ts";

const BIN = fileURLToPath(new URL("../../bin/caliopen.js", import.meta.url));
// Clears the screen, moves the cursor home, sets the window title, and reverses the text that follows.
const HOSTILE_KEY = "evil\u001b[2J\u001b[H\u001b]0;pwned\u0007\u009b31m\u202ekey\r\n\u0008end";
// biome-ignore lint/suspicious/noControlCharactersInRegex: looking for control characters is the point
const ESC_OR_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202e]/;

interface Fixture {
  nats: TestNats;
  node: RunningNode;
}

const test = suite<{ fx: Fixture; cli(...args: string[]): Promise<CliResult> }>("caliopen top");

test.before(async (ctx) => {
  const nats = await startTestNats();
  const node = await startTestNode(
    nats.endpoint,
    { families: [counterFamily("counter"), counterFamily("other", "none")], bindings: () => ({}) },
    { nodeId: "top-node", failureDetectionMs: 2_000 },
  );
  ctx.fx = { nats, node };
  ctx.cli = (...args) => startCli(args, nats.env).exited;
});

test.after(async (ctx) => {
  await ctx.fx.node.shutdown("test over");
  await ctx.fx.nats.stop();
});

test("top --once lists the node and the actors, most recent state change first", async ({ cli, fx }) => {
  await fx.node.supervisors.get("counter")!.start("older");
  await new Promise((resolve) => setTimeout(resolve, 20));
  await fx.node.supervisors.get("counter")!.start("newer");
  await fx.node.supervisors.get("other")!.start("elsewhere");
  const result = await cli("top", "--once");
  assert.is(result.code, 0, result.stderr);
  const lines = result.stdout.split("\n");
  assert.match(lines[0] ?? "", /^caliopen top {2}\d\d:\d\d:\d\d\.\d{3} {2}1 node, 3 actors$/);
  assert.ok(lines.some((line) => /^NODE\s+HEALTH\s+SHARDS\s+ACTORS\s+RECEIVED\s+REJECTED\s+FAILED\s+UPTIME$/.test(line)));
  assert.ok(
    lines.some((line) => /^top-node\s+healthy\s+8\/8\s+3\s+0\s+0\s+0\s+\d+s$/.test(line)),
    result.stdout,
  );
  assert.ok(lines.some((line) => /^KIND\s+KEY\s+NODE\s+STATE\s+SINCE\s+BUSY\s+RESTARTS\s+LAST ERROR$/.test(line)));
  const keys = lines.filter((line) => /^(counter|other)\s/.test(line)).map((line) => line.split(/\s+/)[1]);
  assert.ok(keys.indexOf("newer") < keys.indexOf("older"), keys.join(","));
  assert.match(lines.find((line) => line.startsWith("counter  newer")) ?? "", /^counter\s+newer\s+top-node\s+idle\s+(now|\d+s ago)\s+-\s+0\s+-$/);
  assert.is(lines.at(-2), "3 actors, most recent state change first");
});

test("top --kind and --node filter; --json gives the snapshot", async ({ cli }) => {
  const result = await cli("top", "--kind", "other");
  assert.is(result.code, 0, result.stderr);
  assert.match(result.stdout, /\(kind other\)/);
  assert.match(result.stdout, /^other\s+elsewhere\s+top-node\b/m);
  assert.not.match(result.stdout, /^counter\s/m);

  const nobody = await cli("top", "--node", "no-such-node");
  assert.is(nobody.code, 1);
  assert.match(nobody.stderr, /no node answered/);

  const json = JSON.parse((await cli("top", "--node", "top-node", "--kind", "counter", "--json")).stdout) as {
    nodes: { node: string }[];
    actors: { key: string }[];
  };
  assert.equal(
    json.nodes.map((node) => node.node),
    ["top-node"],
  );
  assert.equal(json.actors.map((actor) => actor.key).sort(), ["newer", "older"]);
});

test("a hostile actor key is printed without its escape sequences and control characters", async ({ cli, fx }) => {
  await fx.node.supervisors.get("other")!.start(HOSTILE_KEY);
  for (const command of [
    ["top", "--kind", "other"],
    ["actors", "--kind", "other"],
  ]) {
    const result = await cli(...command);
    assert.is(result.code, 0, result.stderr);
    assert.not.match(result.stdout, ESC_OR_CONTROL, command.join(" "));
    assert.not.match(result.stdout, /pwned|31m/);
    assert.match(result.stdout, /^other\s+evilkey end\s+top-node\b/m, command.join(" "));
  }
});

test("text is made terminal-safe and cut to the terminal's size", () => {
  assert.is(terminalSafe("a\u001b]2;title\u001b\\b\u001b[1;31mc\u001bcd\te\u0000"), "abcd e");
  const now = Date.now();
  const lines = renderTop(
    {
      at: now,
      nodes: nodeLines([{ node: "n1", actors: 40, cluster: { shards: 8, ownedShards: 8, liveNodes: ["n1", "n2"], healthy: true } }]),
      actors: Array.from({ length: 40 }, (_, i) => ({
        kind: "k",
        key: `key-${i}-${"x".repeat(60)}`,
        subject: "s",
        node: "n1",
        status: "running" as const,
        state: "idle",
        since: new Date(now).toISOString(),
        activeSince: new Date(now).toISOString(),
        restarts: 0,
        busy: false,
        lastError: null,
        deadlines: {},
      })),
      total: 40,
    },
    { filter: {}, width: 50, height: 15 },
  );
  assert.is(lines.length, 15);
  assert.ok(lines.every((line) => Array.from(line).length <= 50));
  assert.ok(
    lines.some((line) => /^n2\s+no reply/.test(line)),
    "a live node that did not answer is shown",
  );
  assert.match(lines.at(-1) ?? "", /^showing \d+ of 40 actors/);
});

test("on a terminal, top draws on the alternate screen and q restores the terminal and exits 0", async ({ fx }) => {
  // `script` (util-linux) gives the CLI a pseudo-terminal for its stdin and stdout; what we write reaches it as keys.
  if (spawnSync("script", ["--version"]).status !== 0) {
    console.warn("skipped: no `script` command to make a pseudo-terminal");
    return;
  }
  const command = [process.execPath, BIN, "top", "--interval", "0.2"].map((word) => `'${word.replaceAll("'", "'\\''")}'`).join(" ");
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(NATS_|CALIOPEN_)/.test(name)));
  const child = spawn("script", ["-qefc", command, "/dev/null"], { cwd: tmpdir(), env: { ...inherited, LOG_LEVEL: "silent", ...fx.nats.env } });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
  await waitFor("top to draw the node", () => output.includes("top-node"), 15_000);
  assert.ok(output.includes("\u001b[?1049h"), "switches to the alternate screen");
  assert.ok(output.includes("\u001b[?25l"), "hides the cursor");
  child.stdin.write("q");
  const code = await exited;
  assert.is(code, 0, output);
  const restored = output.slice(output.lastIndexOf("\u001b[?25h"));
  assert.ok(output.includes("\u001b[?25h"), "shows the cursor again");
  assert.ok(restored.includes("\u001b[?1049l"), "leaves the alternate screen");
  assert.not.ok(output.includes("pwned"));
});

test.run();
