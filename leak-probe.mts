// Temporary: where does a node's heap grow during a fullfetch? Heap snapshots after GC, by constructor.
import { writeHeapSnapshot } from "node:v8";
import { readFileSync } from "node:fs";
import { startBenchServer } from "./scripts/bench/bench-server.ts";
import { benchUser, fillMaildir, imapIdentity, newSecretKey, startBenchDovecot, startMailNode } from "./scripts/bench/mail-bench.ts";
import { encodeJson } from "./runtime/json.ts";

const N = Number(process.env.N ?? 4000);
const gc = (globalThis as { gc?: () => void }).gc!;
const server = await startBenchServer();
const dovecot = await startBenchDovecot();
await fillMaildir(dovecot, "leak", N, { to: "leak@remote.test", tag: `leak-${Date.now()}` });
await fillMaildir(dovecot, "leak2", N, { to: "leak2@remote.test", tag: `leak2-${Date.now()}` });
const mail = await startMailNode(server.endpoint, { smtp: false, push: false, admit: [dovecot.server], secretKey: newSecretKey() });
const counts = (file: string) => {
  const snap = JSON.parse(readFileSync(file, "utf8"));
  const f = snap.snapshot.meta.node_fields as string[];
  const nf = f.length, typeI = f.indexOf("type"), nameI = f.indexOf("name"), sizeI = f.indexOf("self_size");
  const types = snap.snapshot.meta.node_types[0] as string[];
  const by = new Map<string, { n: number; size: number }>();
  const nodes = snap.nodes as number[];
  for (let i = 0; i < nodes.length; i += nf) {
    const key = `${types[nodes[i + typeI]]}:${String(snap.strings[nodes[i + nameI]]).slice(0, 60)}`;
    const e = by.get(key) ?? { n: 0, size: 0 };
    e.n++; e.size += nodes[i + sizeI];
    by.set(key, e);
  }
  return by;
};
async function run(login: string) {
  const { userId } = await benchUser(mail.store, `${login}-user`);
  const identity = await imapIdentity(mail.store, userId, dovecot, login);
  const order = { remote_id: identity.identity_id, user_id: userId };
  mail.nc.publish("imap_worker", encodeJson({ order: "add_worker", ...order }));
  await new Promise((r) => setTimeout(r, 1000));
  mail.nc.publish("IMAPfetcher", encodeJson({ order: "fullfetch", ...order }));
  for (;;) {
    await new Promise((r) => setTimeout(r, 500));
    if ((await mail.storedMessages(userId)) >= N) break;
  }
  await new Promise((r) => setTimeout(r, 3000));
}
await run("leak");
for (let i = 0; i < 4; i++) gc();
const a = writeHeapSnapshot("/tmp/leak-a.heapsnapshot");
console.log("after first", process.memoryUsage().heapUsed / 2 ** 20);
await run("leak2");
for (let i = 0; i < 4; i++) gc();
const b = writeHeapSnapshot("/tmp/leak-b.heapsnapshot");
console.log("after second", process.memoryUsage().heapUsed / 2 ** 20);
const ca = counts(a), cb = counts(b);
const diff = [...cb.entries()].map(([k, v]) => ({ k, dn: v.n - (ca.get(k)?.n ?? 0), ds: v.size - (ca.get(k)?.size ?? 0) })).sort((x, y) => y.ds - x.ds).slice(0, 25);
for (const d of diff) console.log(d.ds, d.dn, d.k);
await mail.stop(); await dovecot.stop(); await server.stop();
process.exit(0);
