// The push scenario's baseline, in a process of its own: a plain imapflow client that opens the mailbox
// and IDLEs, printing `EXISTS <count> <epoch ms>` the moment each untagged EXISTS arrives. Started by
// push-scenario.ts with `{host, port, user, pass}` in BENCH_TASK; prints `READY` once IDLE is sent,
// and runs until it is killed.
import { ImapFlow } from "imapflow";
import { epochNow } from "./stats.ts";

interface WatcherTask {
  host: string;
  port: number;
  user: string;
  pass: string;
}

const task = JSON.parse(process.env.BENCH_TASK ?? "{}") as WatcherTask;
const client = new ImapFlow({ host: task.host, port: task.port, secure: false, auth: { user: task.user, pass: task.pass }, logger: false });
client.on("error", (err: Error) => {
  process.stderr.write(`idle watcher: ${err.message}\n`);
  process.exit(1);
});
client.on("exists", (update: { count: number; prevCount: number }) => {
  if (update.count > update.prevCount) process.stdout.write(`EXISTS ${update.count} ${epochNow()}\n`);
});
await client.connect();
await client.mailboxOpen("INBOX", { readOnly: true });
const idling = client.idle();
// IDLE is on the wire once the command is written; give the server a moment to answer "+ idling".
setTimeout(() => process.stdout.write("READY\n"), 300);
await idling;
