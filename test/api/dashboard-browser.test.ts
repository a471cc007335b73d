// The dashboard in a real headless Chromium (Debian's, driven by playwright-core): the admin's token is
// taken from the address and kept in the tab only, the node is listed, an actor's transition shows up
// without a reload (in the live feed and on the actor's own page), data from the bus is shown as text
// (never HTML), and the page runs under its Content-Security-Policy without a violation. A screenshot
// is kept in test-artifacts/.
import { mkdir } from "node:fs/promises";
import { type Browser, chromium, type Page } from "playwright-core";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { encodeJson } from "../../runtime/json.ts";
import { type DashboardNode, startDashboardNode } from "../helpers/dashboard-node.ts";

const ARTIFACTS = new URL("../../test-artifacts/", import.meta.url);
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const WAIT_MS = 15_000;

const test = suite<{ fx: DashboardNode; browser: Browser; page: Page; problems: string[]; requested: string[] }>("API: dashboard in a browser");

test.before(async (ctx) => {
  ctx.fx = await startDashboardNode("dashboard-browser");
  ctx.browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  ctx.page = await ctx.browser.newPage({ viewport: { width: 1400, height: 1000 } });
  ctx.problems = [];
  ctx.requested = [];
  // A CSP violation or a script error shows on the console.
  ctx.page.on("console", (message) => {
    if (message.type() === "error") ctx.problems.push(message.text());
  });
  ctx.page.on("pageerror", (error) => ctx.problems.push(error.message));
  ctx.page.on("request", (request) => ctx.requested.push(request.url()));
  ctx.page.on("response", (response) => {
    if (response.status() >= 400) ctx.problems.push(`${response.status()} for ${response.url()}`);
  });
});
test.after(async (ctx) => {
  await ctx.browser?.close();
  await ctx.fx.stop();
});

test("the token is taken from the address into sessionStorage, and the node is listed", async ({ fx, page, requested }) => {
  await page.goto(`${fx.url}/dashboard#token=${encodeURIComponent(fx.admin.token)}`);
  await page.locator(`#nodes tbody tr[data-node="${fx.nodeId}"]`).waitFor({ timeout: WAIT_MS });
  assert.not.ok(page.url().includes(fx.admin.token), `the address still holds the token: ${page.url()}`);
  assert.is(await page.evaluate(`sessionStorage.getItem("caliopen.dashboard.token")`), fx.admin.token);
  assert.ok(
    requested.every((url) => !url.includes(fx.admin.token)),
    "no URL the page asked for holds the token",
  );
  assert.match(String(await page.locator(`#nodes tbody tr[data-node="${fx.nodeId}"]`).textContent()), /8\/8/, "the node's shards");
  await page.locator("#live.live").waitFor({ timeout: WAIT_MS });
});

test("an actor's transitions appear without a reload", async ({ fx, page }) => {
  const actor = `contact/${fx.admin.contact_id}`;
  fx.nc.publish("contactAction", encodeJson({ order: "contact_update", contact_id: fx.admin.contact_id, user_id: fx.admin.user_id }));
  const line = page.locator(`#transitions li[data-actor="${actor}"]`, { hasText: "→ idle" });
  await line.first().waitFor({ timeout: WAIT_MS });
  await page.locator("#actors tbody td", { hasText: fx.admin.contact_id }).first().waitFor({ timeout: WAIT_MS });
  await mkdir(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: new URL("dashboard.png", ARTIFACTS).pathname, fullPage: true });
});

test("the actor's page shows its state and context, and its next transitions live", async ({ fx, page }) => {
  await page.locator("#actors tbody a", { hasText: fx.admin.contact_id }).first().click();
  await page.locator("#actor-title", { hasText: `contact/${fx.admin.contact_id}` }).waitFor({ timeout: WAIT_MS });
  await page.locator("#actor-summary dd", { hasText: fx.nodeId }).waitFor({ timeout: WAIT_MS });
  assert.match(String(await page.locator("#actor-context").textContent()), /"/, "the context, as JSON");
  fx.nc.publish("contactAction", encodeJson({ order: "contact_update", contact_id: fx.admin.contact_id, user_id: fx.admin.user_id }));
  await page.locator("#actor-transitions li", { hasText: "working" }).first().waitFor({ timeout: WAIT_MS });
  await page.screenshot({ path: new URL("dashboard-actor.png", ARTIFACTS).pathname, fullPage: true });
  await page.locator("header h1 a").click();
  await page.locator("#overview").waitFor({ state: "visible", timeout: WAIT_MS });
});

test("keys and states from the bus are shown as text, never run as HTML", async ({ fx, page }) => {
  const key = `<img src=x id=injected onerror="document.title='owned'">`;
  fx.nc.publish(
    `caliopen.debug.transitions.contact.=${Buffer.from(key).toString("base64url")}`,
    encodeJson({ kind: "contact", key, node: "<b>node</b>", from: null, to: "<i>state</i>", event: "x", at: new Date().toISOString() }),
  );
  await page.locator("#transitions li", { hasText: "<img src=x" }).first().waitFor({ timeout: WAIT_MS });
  assert.is(await page.locator("#injected").count(), 0);
  assert.is(await page.locator("#transitions b, #transitions i").count(), 0);
  assert.is.not(await page.title(), "owned");
});

test("nothing broke the page or its Content-Security-Policy", async ({ problems }) => {
  assert.equal(problems, []);
});

test("a stopping node ends the page's event stream at once, and is not held by it", async ({ fx, page }) => {
  await page.locator("#live.live").waitFor({ timeout: WAIT_MS });
  const started = Date.now();
  const stopped = fx.node.shutdown("test over");
  await page.locator("#live:not(.live)").waitFor({ timeout: 2_000 });
  await stopped;
  // The page's other keep-alive connections may hold the server until the API's keep-alive timeout (5 s).
  assert.ok(Date.now() - started < 10_000, `the node took ${Date.now() - started} ms to stop`);
});

test.run();
