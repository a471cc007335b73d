// Writes docs/contract.md from the contract table, so the documentation cannot drift from what
// nodes subscribe and validate. `npm run contract-doc` regenerates it; a test checks it is current.
import { writeFile } from "node:fs/promises";
import { CONTRACT, ID_PATTERN, ID_RULE, isPublishOnly, type OrderSpec } from "../contract/contract-table.ts";
import { EVENTS } from "../contract/events-table.ts";
import { BUS_JSON_LIMITS } from "../runtime/json.ts";
import type { FieldSpec, PayloadSchema } from "../runtime/payload-schema.ts";
import { MAX_REPLY_SUBJECT_LENGTH } from "../runtime/subjects.ts";

export function renderContractDoc(): string {
  const lines = [
    "# The wire contract, as the nodes implement it",
    "",
    "Generated from `contract/contract-table.ts` by `npm run contract-doc`; do not edit by hand.",
    "Subjects are shown without the deployment namespace (`CALIOPEN_NAMESPACE`), which prefixes all of them.",
    "Every payload also carries `order`; unknown extra fields are accepted.",
    "",
    "Limits, checked before anything else is done with an order: an order is at most",
    `${BUS_JSON_LIMITS.maxBytes / 1024} KiB of JSON nested at most ${BUS_JSON_LIMITS.maxDepth} levels deep; every id field (${idFields()
      .map((name) => `\`${name}\``)
      .join(", ")})`,
    `is ${ID_RULE} (Caliopen's ids are UUIDs); a request whose reply subject is not a plain subject`,
    `of at most ${MAX_REPLY_SUBJECT_LENGTH} characters gets no reply.`,
    "",
    "Subjects whose orders are all published are captured by the JetStream stream `caliopen_intake` as",
    "they are sent and read through one durable consumer per subject, named `<queue group>_<subject>`",
    "and shared by every node, so an order taken by a node that dies is handled by another. Subjects",
    "with requests are consumed from core NATS in their queue group, since a reply needs the requester's inbox.",
    "",
    "*Handled by*: the actor the order goes to (`caliopen.actor.<kind>.<key>`, run by one node of the cluster), told",
    "the order, or started, reloaded or removed by its supervisor (worker lifecycle); or a stateless handler any node runs.",
    "",
    "| subject | queue group | taken from | service (seed handler) | order | mode | required fields | handled by | emitted by |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  for (const row of CONTRACT) {
    const source = isPublishOnly(row) ? "intake stream" : "core queue group";
    for (const [order, spec] of Object.entries(row.orders) as [string, OrderSpec][]) {
      const fields = Object.entries(spec.payload)
        .filter(([, field]) => field.required)
        .map(([name, field]) => `\`${name}\`${fieldNote(field)}`)
        .join(", ");
      lines.push(
        `| \`${row.subject}\` | \`${row.queue}\` | ${source} | ${row.service} (${row.handler}) | \`${order}\`${spec.extension === undefined ? "" : " *"} | ${mode(spec)} | ${fields} | ${handledBy(spec)} | ${spec.emittedBy} |`,
      );
    }
  }
  const extensions = CONTRACT.flatMap((row) =>
    (Object.entries(row.orders) as [string, OrderSpec][]).flatMap(([order, spec]) =>
      spec.extension === undefined ? [] : [`- \`${order}\` on \`${row.subject}\`: ${spec.extension}.`],
    ),
  );
  lines.push("", "\\* This build's extensions: orders the seed contract does not have, on its subjects and with its id rules.", "", ...extensions);
  lines.push(
    "",
    'Replies to requests are JSON objects `{"error": bool, "message": string, …}`. Invalid JSON, a missing or',
    'mistyped field and an unknown order get `{"error": true, "message": …}` naming the problem; the same',
    "problems on a published order are logged, counted and kept as dead letters (`caliopen deadletters`).",
    ...renderEvents(),
    "",
  );
  return lines.join("\n");
}

/** The subjects this build publishes for clients (contract/events-table.ts), each with its payload. */
function renderEvents(): string[] {
  const lines = [
    "",
    "## Events",
    "",
    "Subjects this build publishes for clients to follow (extensions of the seed contract): no service takes orders on",
    "them, no reply is expected. The part in angle brackets is checked by the id rule above before it becomes a subject token.",
  ];
  for (const event of EVENTS) {
    lines.push(
      "",
      `### \`${event.subject}\``,
      "",
      `${event.extension}.`,
      "",
      `Emitted by ${event.emittedBy}; read by ${event.readBy}.`,
      "",
      "| field | type | required | meaning |",
      "|---|---|---|---|",
      ...fieldRows(event.payload),
    );
    if (event.list !== undefined) {
      lines.push(
        `| \`${event.list.field}\` | list of at most ${event.list.maxEntries} | when ${event.list.when} | one entry per message, below |`,
        "",
        `Each entry of \`${event.list.field}\`:`,
        "",
        "| field | type | required | meaning |",
        "|---|---|---|---|",
        ...fieldRows(event.list.entry),
      );
    }
  }
  return lines;
}

function fieldRows(schema: PayloadSchema): string[] {
  return Object.entries(schema).map(([name, field]) => `| \`${name}\` | ${fieldType(field)} | ${field.required ? "yes" : "no"} | ${field.description ?? ""} |`);
}

/** A field's type with its bounds: `string, ≤ 40 characters`, `string, one of …`, `id` (the rule above). */
function fieldType(field: FieldSpec): string {
  if (field.pattern === ID_PATTERN) return "id";
  if (field.enum !== undefined) return `${field.type}, one of ${field.enum.map((value) => `\`${value}\``).join(", ")}`;
  return field.maxLength === undefined ? field.type : `${field.type}, ≤ ${field.maxLength} characters`;
}

/** The actor (kind, key field) or the stateless handler. */
function handledBy(spec: OrderSpec): string {
  const routing = spec.handledBy;
  if ("stateless" in routing) return `stateless: ${routing.stateless}`;
  return `${routing.as === "lifecycle" ? "supervisor of " : ""}actor \`${routing.actor}\` by \`${routing.key}\``;
}

/** Publish, or request with how long its requester waits for the reply. */
function mode(spec: OrderSpec): string {
  if (spec.mode === "publish") return "publish/subscribe";
  const notes = [
    spec.replyWithinMs === undefined ? null : `reply within ${spec.replyWithinMs / 1000} s`,
    spec.reply === undefined
      ? null
      : `a success carries ${Object.keys(spec.reply)
          .map((field) => `\`${field}\``)
          .join(", ")}`,
  ].filter((note) => note !== null);
  return notes.length === 0 ? "request/reply" : `request/reply (${notes.join("; ")})`;
}

/** The fields that follow the id rule, in the order the table first names them. */
function idFields(): string[] {
  const names = new Set<string>();
  for (const row of CONTRACT) {
    for (const spec of Object.values(row.orders) as OrderSpec[])
      for (const [name, field] of Object.entries(spec.payload)) if (field.pattern === ID_PATTERN) names.add(name);
  }
  return [...names];
}

/** The field's type and bounds, as shown after its name (ids follow the rule stated above the table). */
function fieldNote(field: FieldSpec): string {
  if (field.pattern === ID_PATTERN) return "";
  if (field.enum !== undefined) return ` (one of ${field.enum.map((value) => `\`${value}\``).join(", ")})`;
  const notes = [field.type === "string" ? null : field.type, field.maxLength === undefined ? null : `≤ ${field.maxLength} characters`].filter(
    (note) => note !== null,
  );
  return notes.length === 0 ? "" : ` (${notes.join(", ")})`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await writeFile(new URL("../docs/contract.md", import.meta.url), renderContractDoc());
  process.stdout.write("wrote docs/contract.md\n");
}
