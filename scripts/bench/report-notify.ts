// Section 10 of the report: a mail's way from SMTP to the user's open notification event stream, held
// to the aim (within 1 s).
import type { BenchRun } from "./bench-run.ts";
import { TARGETS } from "./bench-targets.ts";
import { backgroundLine, failureText, seconds, type Verdict, warningLines } from "./report-format.ts";
import type { PushLatency } from "./results.ts";
import { formatMs } from "./stats.ts";

function latencyRow(label: string, value: PushLatency): string {
  return `| ${label} | ${formatMs(value.median)} | ${formatMs(value.p90)} | ${formatMs(value.max)} | ${value.missed} |`;
}

export function notifySection(run: BenchRun, verdicts: Verdict[]): string[] {
  const outcome = run.notify;
  if (outcome === null) return [];
  const lines = ["## 10. Notifications: from a mail's SMTP transaction to the user's event stream", ""];
  const target = `A mail arriving by SMTP reaches the user's open notification stream ≤ ${seconds(TARGETS.notifyMs)} (aim of the issue)`;
  if (!outcome.ok) {
    verdicts.push({ target, measured: "the scenario failed", met: null });
    return [...lines, failureText(outcome.error), ...backgroundLine([outcome])];
  }
  const r = outcome.value;
  verdicts.push({
    target,
    measured: `max ${formatMs(r.notified.max)} (median ${formatMs(r.notified.median)}) over ${r.mails} mails`,
    met: r.notified.max <= TARGETS.notifyMs,
  });
  lines.push(
    `A node runs its inbound SMTP server and its API; a client holds the user's notification stream open (\`GET /api/v2/notifications/stream\`, server-sent events read as they come over HTTP). ${r.mails} mails are sent to the user with nodemailer, one at a time, ${seconds(r.spacingMs)} apart; each is timed from just before its SMTP transaction starts. **Completion signal**: the \`notification\` event naming the mail's subject, read from the stream. A notification waits ${formatMs(r.quietMs)} for more imports of the same user (a sync's, gathered into one, as the original's batches) before it is published: that wait is part of each figure.`,
    "",
    "| Observer | median | p90 | max | missed |",
    "|---|---:|---:|---:|---:|",
    latencyRow("SMTP transaction, until the 250 to DATA (the mail stored)", r.accepted),
    latencyRow("**notification read from the event stream**", r.notified),
    "",
    `What dominates (medians): the SMTP transaction up to its 250, ${formatMs(r.accepted.median)} (the raw stored, the import by the user's inbound actor, which hands the message to the notification batch), then the batch's quiet wait, ${formatMs(r.quietMs)}; the rest, ${formatMs(Math.max(0, r.notified.median - r.accepted.median - r.quietMs))}, is the publish into JetStream, the stream's consumer on the API's side and the socket.`,
    ...warningLines([{ label: "node", warnings: r.warnings }], "Warnings and errors the node logged during the run:"),
    ...backgroundLine([outcome]),
  );
  return lines;
}
