// Scenario 10: notification latency. A node runs its inbound SMTP server and its API; a client holds the
// user's notification event stream open (GET /api/v2/notifications/stream, read as it comes over HTTP),
// and mails are sent to the user one at a time, spaced out. For each mail, from just before its SMTP
// transaction starts: (a) the server's 250 to DATA (the mail stored), and (b) the notification event that
// names it, read from the stream (matched by subject).
import { request } from "node:http";
import { createTransport } from "nodemailer";
import { createUser } from "../../actors/accounts/create-user.ts";
import { DEFAULT_BATCH_TIMING } from "../../actors/notifications/new-message-batches.ts";
import { SseFrames } from "../local-servers/sse-frames.ts";
import { childMain } from "./child-protocol.ts";
import { MAIL_HOST, startMailNode } from "./mail-bench.ts";
import type { NotifyResult, NotifyTask } from "./notify-results.ts";

import { epochNow, latencySummary } from "./stats.ts";

/** How long one mail may take to be notified before it counts as missed. */
const NOTIFIED_WITHIN_MS = 15_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The user's event stream: when each subject's notification was read. */
function openStream(apiUrl: string, token: string): Promise<{ notifiedAt: Map<string, number>; ready: Promise<void>; close(): void }> {
  return new Promise((resolve, reject) => {
    const notifiedAt = new Map<string, number>();
    let markReady = () => {};
    const ready = new Promise<void>((done) => (markReady = done));
    const req = request(`${apiUrl}/api/v2/notifications/stream`, { headers: { authorization: `Bearer ${token}` }, agent: false }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`the event stream answered ${res.statusCode}`));
      res.setEncoding("utf8");
      const frames = new SseFrames();
      res.on("data", (chunk: string) => {
        const at = epochNow();
        for (const { event, data } of frames.push(chunk)) {
          if (event === "ready") markReady();
          if (event !== "notification") continue;
          const parsed = JSON.parse(data) as { elements?: { subject?: string }[] };
          for (const element of parsed.elements ?? [])
            if (element.subject !== undefined && !notifiedAt.has(element.subject)) notifiedAt.set(element.subject, at);
        }
      });
      resolve({ notifiedAt, ready, close: () => req.destroy() });
    });
    req.on("error", reject);
    req.end();
  });
}

childMain<NotifyTask>(async (task): Promise<NotifyResult> => {
  const progress = (message: string) => process.stderr.write(`bench:   notify: ${message}\n`);
  const mail = await startMailNode(task.endpoint, { smtp: true, push: false, api: true });
  try {
    if (mail.smtpPort === null || mail.apiUrl === null) throw new Error("the node runs no SMTP server or no API");
    const created = await createUser(mail.store, { name: "bench", email: `bench@${MAIL_HOST}` });
    const stream = await openStream(mail.apiUrl, created.token);
    await stream.ready;
    const smtp = createTransport({ host: "127.0.0.1", port: mail.smtpPort, secure: false, ignoreTLS: true, pool: false });
    const acceptedMs: (number | null)[] = [];
    const notifiedMs: (number | null)[] = [];
    const tag = `notify-${Date.now()}`;
    for (let i = 1; i <= task.mails; i++) {
      const subject = `${tag} ${i}`;
      const sentAt = epochNow();
      await smtp.sendMail({ from: "sender@elsewhere.test", to: created.identity?.identifier ?? `bench@${MAIL_HOST}`, subject, text: `Mail ${i}.` });
      acceptedMs.push(epochNow() - sentAt);
      const until = sentAt + NOTIFIED_WITHIN_MS;
      while (!stream.notifiedAt.has(subject) && epochNow() < until) await sleep(1);
      const at = stream.notifiedAt.get(subject);
      notifiedMs.push(at === undefined ? null : at - sentAt);
      const rest = sentAt + task.spacingMs - epochNow();
      if (rest > 0) await sleep(rest);
    }
    stream.close();
    smtp.close();
    const result: NotifyResult = {
      mails: task.mails,
      spacingMs: task.spacingMs,
      accepted: latencySummary(acceptedMs),
      notified: latencySummary(notifiedMs),
      quietMs: DEFAULT_BATCH_TIMING.quietMs,
      warnings: mail.warnings(),
    };
    progress(`250 median ${result.accepted.median.toFixed(1)} ms, notified median ${result.notified.median.toFixed(1)} ms (${result.notified.missed} missed)`);
    if (result.notified.missed > 0) throw new Error(`${result.notified.missed} mails not notified within ${NOTIFIED_WITHIN_MS} ms`);
    return result;
  } finally {
    await mail.stop();
  }
});
