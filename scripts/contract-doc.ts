// Writes docs/contract.md from the contract table, so the documentation cannot drift from what
// nodes subscribe and validate. `npm run contract-doc` regenerates it; a test checks it is current.
import { writeFile } from "node:fs/promises";
import { CONTRACT, isPublishOnly, type OrderSpec } from "../actors/contract/contract-table.ts";

export function renderContractDoc(): string {
  const lines = [
    "# The wire contract, as the nodes implement it",
    "",
    "Generated from `actors/contract/contract-table.ts` by `npm run contract-doc`; do not edit by hand.",
    "Subjects are shown without the deployment namespace (`CALIOPEN_NAMESPACE`), which prefixes all of them.",
    "Every payload also carries `order`; unknown extra fields are accepted.",
    "",
    "Subjects whose orders are all published are captured by the JetStream stream `caliopen_intake` as",
    "they are sent and read through one durable consumer per subject, named `<queue group>_<subject>`",
    "and shared by every node, so an order taken by a node that dies is handled by another. Subjects",
    "with requests are consumed from core NATS in their queue group, since a reply needs the requester's inbox.",
    "",
    "| subject | queue group | taken from | service (seed handler) | order | mode | required fields | emitted by |",
    "|---|---|---|---|---|---|---|---|",
  ];
  for (const row of CONTRACT) {
    const source = isPublishOnly(row) ? "intake stream" : "core queue group";
    for (const [order, spec] of Object.entries(row.orders) as [string, OrderSpec][]) {
      const fields = Object.entries(spec.payload)
        .filter(([, field]) => field.required)
        .map(([name, field]) => `\`${name}\`${field.type === "string" ? "" : ` (${field.type})`}`)
        .join(", ");
      lines.push(`| \`${row.subject}\` | \`${row.queue}\` | ${source} | ${row.service} (${row.handler}) | \`${order}\` | ${spec.mode === "request" ? "request/reply" : "publish/subscribe"} | ${fields} | ${spec.emittedBy} |`);
    }
  }
  lines.push(
    "",
    "Replies to requests are JSON objects `{\"error\": bool, \"message\": string, …}`. Invalid JSON, a missing or",
    "mistyped field and an unknown order get `{\"error\": true, \"message\": …}` naming the problem; the same",
    "problems on a published order are logged, counted and kept as dead letters (`caliopen deadletters`).",
    "",
  );
  return lines.join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await writeFile(new URL("../docs/contract.md", import.meta.url), renderContractDoc());
  process.stdout.write("wrote docs/contract.md\n");
}
