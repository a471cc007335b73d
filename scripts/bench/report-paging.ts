// The scale section on paging: what a page of a user's listings and the RCPT TO lookup cost with 10 and
// with 100,000 messages stored, beside what the earlier whole-listing implementation cost.
import type { Outcome } from "./bench-run.ts";
import type { PagingFigure, PagingOperation, PagingResult } from "./paging-results.ts";
import { failureText, seconds } from "./report-format.ts";
import { formatCount, formatMs, formatRatio } from "./stats.ts";

const LABELS: Record<PagingOperation, string> = {
  "messages-first-10": "messages, first page of 10",
  "messages-first-50": "messages, first page of 50",
  "messages-cursor-mid": "messages, page of 50 after a cursor half-way",
  "messages-offset-mid": "messages, page of 50 at offset half-way",
  "drafts-first-50": "drafts (`is_draft=true`), first page of 50",
  "contacts-first-50": "contacts, first page of 50",
  "discussions-first-10": "discussions, first page of 10 (last message, counts)",
  "discussion-messages-first-10": "one discussion's messages, first page of 10",
  identities: "identities (all 3 of the user)",
  "rcpt-lookup": "RCPT TO lookup (`byIdentifier`)",
  "messages-create": "storing a message (`messages.create`: its entry, then it)",
  "old-messages-first-50": "*earlier: messages, first page of 50 (every document read)*",
  "old-rcpt-lookup": "*earlier: RCPT TO lookup (claims listed by STREAM.INFO)*",
  "old-discussions-first-10": "*without an index: discussions, first page of 10 (every message read and grouped)*",
  "old-messages-create": "*earlier: storing a message (the document alone)*",
};

const figureOf = (result: PagingResult, operation: PagingOperation, size: number): PagingFigure | undefined =>
  result.figures.find((figure) => figure.operation === operation && figure.size === size);

const cell = (figure: PagingFigure | undefined) =>
  figure === undefined
    ? "n/a"
    : figure.error !== undefined
      ? `**failed** (${figure.error}) after ${figure.calls} call${figure.calls === 1 ? "" : "s"}${figure.calls > 0 ? ` taking ${formatMs(figure.p50Ms)}` : ""}`
      : `${formatMs(figure.p50Ms)} / ${formatMs(figure.p99Ms)}; CPU ${formatMs(figure.clientCpuMs)} + server ${formatMs(figure.serverCpuMs)}; ${figure.items} items`;

/** The sizes measured, smallest and largest. */
function extremes(result: PagingResult): { small: number; large: number } | null {
  const sizes = [...new Set(result.figures.map((figure) => figure.size))].sort((a, b) => a - b);
  const small = sizes[0];
  const large = sizes.at(-1);
  return small === undefined || large === undefined || small === large ? null : { small, large };
}

export function pagingSection(outcome: Outcome<PagingResult> | null): string[] {
  const lines = ["### Pages that cost the same at any size", ""];
  if (outcome === null) return [...lines, "Not run."];
  if (!outcome.ok) return [...lines, failureText(outcome.error)];
  const result = outcome.value;
  const sizes = [...new Set(result.figures.map((figure) => figure.size))].sort((a, b) => a - b);
  lines.push(
    "One user's store grown from 10 to 100,000 messages on nats-server 2.9 (file storage) (a tenth as many contacts, 3 identities; each message's Message-ID claimed in the lookups bucket, as imports do). Each operation is called in a row after a warm-up: p50 / p99 of a call; CPU per call of the caller and of the nats-server (10 ms ticks spread over the calls); items answered.",
    "",
    `| operation | ${sizes.map((size) => `${formatCount(size)} messages`).join(" | ")} |`,
    `|---|${sizes.map(() => "---").join("|")}|`,
  );
  const operations = [...new Set(result.figures.map((figure) => figure.operation))];
  for (const operation of operations) lines.push(`| ${LABELS[operation]} | ${sizes.map((size) => cell(figureOf(result, operation, size))).join(" | ")} |`);
  lines.push(
    "",
    ...result.setups.map(
      (setup) =>
        `- Grown to ${formatCount(setup.size)} messages and ${formatCount(setup.contacts)} contacts: documents written as the earlier version stored them in ${seconds(setup.writeMs)} (concurrent puts, no index entries); the first listing by a process that never saw the user built its indexes from every document in ${seconds(setup.indexMs)}.`,
    ),
  );
  const ends = extremes(result);
  if (ends !== null) lines.push("", dominantCost(result, ends.small, ends.large));
  return lines;
}

/** What the figures say dominates a page's cost. */
function dominantCost(result: PagingResult, small: number, large: number): string {
  const at = (operation: PagingOperation, size: number) => figureOf(result, operation, size);
  const ten = at("messages-first-10", large);
  const fifty = at("messages-first-50", large);
  const old = at("old-messages-first-50", large);
  const offset = at("messages-offset-mid", large);
  const cursor = at("messages-cursor-mid", large);
  if (ten === undefined || fifty === undefined) return "";
  const parts = [
    `A page costs what it reads: the leaf or two of index entries it spans (up to 200 entries each) and one read per document shown, so a page of 50 costs ${formatRatio(fifty.p50Ms / ten.p50Ms)} a page of 10 at ${formatCount(large)} messages, and a page of 10 costs ${formatRatio(ten.p50Ms / (at("messages-first-10", small)?.p50Ms ?? Number.NaN))} at ${formatCount(large)} what it costs at ${formatCount(small)}.`,
  ];
  if (cursor !== undefined) parts.push(`A cursor half-way in costs ${formatMs(cursor.p50Ms)}, as a first page does.`);
  if (offset !== undefined)
    parts.push(
      `An offset half-way in (${formatCount(Math.floor(large / 2))}) walks every leaf before it: ${formatMs(offset.p50Ms)}, which is why the API offers \`after\`.`,
    );
  if (old?.error !== undefined)
    parts.push(
      `The earlier implementation, which read all ${formatCount(large)} documents at once for any page, failed (${old.error}) after ${seconds(old.p50Ms)}: its reads all in flight together outlast their timeout.`,
    );
  else if (old !== undefined)
    parts.push(
      `The earlier implementation read all ${formatCount(large)} documents for any page: ${formatMs(old.p50Ms)} (${formatRatio(old.p50Ms / fifty.p50Ms)} the indexed page).`,
    );
  const discussions = at("discussions-first-10", large);
  const oldDiscussions = at("old-discussions-first-10", large);
  if (discussions !== undefined)
    parts.push(
      `A page of 10 discussions reads a leaf of the discussions index, then for each its summary, its newest message (a leaf of its own index and the document) and its two counts: ${formatMs(discussions.p50Ms)} at ${formatCount(large)} messages${oldDiscussions === undefined ? "" : oldDiscussions.error !== undefined ? `; grouping every message instead failed (${oldDiscussions.error})` : `, against ${formatMs(oldDiscussions.p50Ms)} for reading and grouping every message`}.`,
    );
  const rcpt = at("rcpt-lookup", large);
  const oldRcpt = at("old-rcpt-lookup", large);
  if (rcpt !== undefined && oldRcpt !== undefined)
    parts.push(
      `The RCPT TO lookup is one read of the identifier's holders plus one per identity: ${formatMs(rcpt.p50Ms)} and ${formatMs(rcpt.serverCpuMs)} of server CPU, against ${formatMs(oldRcpt.p50Ms)} and ${formatMs(oldRcpt.serverCpuMs)} for the listing of claims under a wildcard, which grows with the lookups bucket.`,
    );
  return parts.join(" ");
}

export function pagingVerdicts(outcome: Outcome<PagingResult> | null): { target: string; measured: string; met: boolean }[] {
  if (outcome === null || !outcome.ok) return [];
  const result = outcome.value;
  const ends = extremes(result);
  if (ends === null) return [];
  const verdicts: { target: string; measured: string; met: boolean }[] = [];
  const compare = (target: string, operation: PagingOperation, note: string) => {
    const small = figureOf(result, operation, ends.small);
    const large = figureOf(result, operation, ends.large);
    if (small === undefined || large === undefined) return;
    const ratio = large.p50Ms / small.p50Ms;
    verdicts.push({
      target,
      measured: `p50 ${formatMs(large.p50Ms)} at ${formatCount(ends.large)} against ${formatMs(small.p50Ms)} at ${formatCount(ends.small)} (${formatRatio(ratio)}; ${note})`,
      met: ratio <= 2,
    });
  };
  compare(
    `messages page at ${formatCount(ends.large)} ≤ 2× its cost at ${formatCount(ends.small)}`,
    "messages-first-10",
    "a page of 10 at both sizes, so the same documents are read",
  );
  compare(
    `discussions page at ${formatCount(ends.large)} ≤ 2× its cost at ${formatCount(ends.small)}`,
    "discussions-first-10",
    "a page of 10 discussions at both sizes: each its newest message and two counts",
  );
  compare(
    `RCPT TO lookup at ${formatCount(ends.large)} messages ≤ 2× its cost at ${formatCount(ends.small)}`,
    "rcpt-lookup",
    "one holders read and one identity read at both sizes",
  );
  return verdicts;
}
