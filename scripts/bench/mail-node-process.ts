// A node running the Caliopen services in a process of its own, for the IMAP scenario's several-node
// runs: BENCH_MAIL_NODE holds its settings (endpoint, shared secret key, node id, admitted servers).
import type { NatsEndpoint } from "../../runtime/nats-endpoint.ts";
import { startMailNode } from "./mail-bench.ts";

export interface MailNodeTask {
  endpoint: NatsEndpoint;
  secretKey: string;
  nodeId: string;
  admit: string[];
}

const task = JSON.parse(process.env.BENCH_MAIL_NODE ?? "null") as MailNodeTask | null;
if (task === null) throw new Error("BENCH_MAIL_NODE is not set");
const mail = await startMailNode(task.endpoint, { smtp: false, push: false, admit: task.admit, secretKey: task.secretKey, nodeId: task.nodeId });
process.stdout.write("ready\n");
process.on(
  "SIGTERM",
  () =>
    void mail.stop().then(() => {
      const warnings = mail.warnings();
      if (Object.keys(warnings).length > 0) process.stdout.write(`warnings ${JSON.stringify(warnings)}\n`);
      process.exit(0);
    }),
);
