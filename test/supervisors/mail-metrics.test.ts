// The messaging metrics on a node: a mail received by the inbound SMTP server is counted as imported
// from smtp (and timed), its session counted; a recipient refused is counted by stage and code.
import { createTransport } from "nodemailer";
import { Registry } from "prom-client";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createUser } from "../../actors/accounts/create-user.ts";
import { openStore } from "../../actors/store/store.ts";
import { failure, ok } from "../../runtime/reply.ts";
import { Subjects } from "../../runtime/subjects.ts";
import { waitFor } from "../../scripts/local-servers/wait.ts";
import { caliopenServices } from "../../supervisors/caliopen-services.ts";
import { MAIL_METRIC_NAMES, MailMetrics } from "../../supervisors/mail-metrics.ts";
import type { RunningNode } from "../../supervisors/node.ts";
import { type MetricsText, parseMetrics, sampleValue } from "../helpers/metrics-text.ts";
import { startTestNats, type TestNats } from "../helpers/nats-server.ts";
import { startTestNode, testCaliopenConfig } from "../helpers/test-node.ts";

const test = suite<{ nats: TestNats; node: RunningNode; smtpPort: number }>("mail metrics");

test.before(async (ctx) => {
  ctx.nats = await startTestNats();
  const config = testCaliopenConfig({
    api: null,
    mail: { host: "platform.test", relay: { host: "127.0.0.1", port: 1 }, smtp: { host: "127.0.0.1", port: 0, maxSize: 1_000_000, maxRecipients: 10 } },
  });
  ctx.node = await startTestNode(ctx.nats.endpoint, caliopenServices(config, { onSmtpStarted: (port) => (ctx.smtpPort = port) }), { nodeId: "mail-metrics" });
  const client = await ctx.nats.connect();
  const store = await openStore({ nc: client, subjects: new Subjects(""), secrets: config.secrets });
  await createUser(store, { name: "alice", email: "alice@platform.test" });
  await client.close();
});
test.after(async (ctx) => {
  await ctx.node.shutdown("test over");
  await ctx.nats.stop();
});

const scrape = async (node: RunningNode): Promise<MetricsText> => parseMetrics((await node.metrics.scrape()).text);

function send(port: number, to: string): Promise<unknown> {
  const transport = createTransport({ host: "127.0.0.1", port, secure: false, ignoreTLS: true });
  return transport
    .sendMail({ from: "bob@elsewhere.test", to, subject: "hello", text: "Hi Alice", messageId: `<m-${Date.now()}@elsewhere.test>` })
    .finally(() => transport.close());
}

test("the metrics are there from the start, typed", async ({ node }) => {
  const metrics = await scrape(node);
  assert.is(metrics.types.get(MAIL_METRIC_NAMES.imported), "counter");
  assert.is(metrics.types.get(MAIL_METRIC_NAMES.importSeconds), "histogram");
  assert.is(metrics.types.get(MAIL_METRIC_NAMES.smtpSessions), "counter");
  for (const source of ["imap", "smtp", "twitter"]) assert.is(sampleValue(metrics, MAIL_METRIC_NAMES.imported, { source }), 0);
});

test("a mail received over SMTP is counted as imported from smtp, with its session and its import's time", async ({ node, smtpPort }) => {
  await send(smtpPort, "alice@platform.test");
  const metrics = await waitFor(
    "the import counted",
    async () => {
      const now = await scrape(node);
      return sampleValue(now, MAIL_METRIC_NAMES.imported, { source: "smtp" }) === 1 ? now : undefined;
    },
    5_000,
  );
  assert.is(sampleValue(metrics, `${MAIL_METRIC_NAMES.importSeconds}_count`, { source: "smtp" }), 1);
  assert.is(sampleValue(metrics, MAIL_METRIC_NAMES.importFailures, { source: "smtp" }), 0);
  assert.ok(sampleValue(metrics, MAIL_METRIC_NAMES.smtpSessions) >= 1);
});

test("a recipient that is not a local identity is counted as a refusal at RCPT, by its code; the address is no label", async ({ node, smtpPort }) => {
  await send(smtpPort, "nobody-here@platform.test").then(
    () => assert.unreachable("accepted a mail for nobody"),
    () => undefined,
  );
  const metrics = await scrape(node);
  assert.is(sampleValue(metrics, MAIL_METRIC_NAMES.smtpRefusals, { stage: "rcpt", code: "550" }), 1);
  assert.not.ok(metrics.samples.some((s) => Object.values(s.labels).some((value) => value.includes("@"))));
});

test("an IMAP batch counts each of its raws by its own reply", async () => {
  const registry = new Registry();
  const batch = new MailMetrics(registry);
  await batch.importBatch("imap", 3, async () => ok("batch", { results: [ok("imported"), failure("unreadable raw"), ok("already imported")] }));
  await batch.importBatch("imap", 2, () => Promise.reject(new Error("no reply"))).catch(() => undefined);
  const text = parseMetrics(await registry.metrics());
  assert.is(sampleValue(text, MAIL_METRIC_NAMES.imported, { source: "imap" }), 2);
  assert.is(sampleValue(text, MAIL_METRIC_NAMES.importFailures, { source: "imap" }), 3);
  assert.is(sampleValue(text, `${MAIL_METRIC_NAMES.importSeconds}_count`, { source: "imap" }), 5);
});

test.run();
