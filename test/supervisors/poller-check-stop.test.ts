// A node stopping while its pollers check is giving pollers out: the check ends with the node (what it
// did not give, the next node's check gives), and the node's shutdown does not wait for every poller
// of a long check to be given.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { openStore } from "../../actors/store/store.ts";
import { Subjects } from "../../runtime/subjects.ts";
import { waitFor } from "../../scripts/local-servers/wait.ts";
import { caliopenServices } from "../../supervisors/caliopen-services.ts";
import { startTestNats } from "../helpers/nats-server.ts";
import { startTestNode, testCaliopenConfig } from "../helpers/test-node.ts";

const test = suite("pollers check at shutdown");
const IDENTITIES = 5_000;

test("a node stopped during a check of 5,000 missing pollers stops within seconds, and a new node gives the rest", async () => {
  const nats = await startTestNats();
  try {
    const client = await nats.connect();
    const config = testCaliopenConfig({ api: null, pollerCheckEveryMs: 1_000, imap: { push: false } });
    const store = await openStore({ nc: client, subjects: new Subjects(""), secrets: config.secrets });
    // Identities stored with no add_identity: only the check gives them pollers. Their servers do not exist.
    const user = crypto.randomUUID();
    for (let n = 0; n < IDENTITIES; n += 100) {
      await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          store.identities.create({
            user_id: user,
            type: "remote",
            protocol: "imap",
            identifier: `check${n + i}@remote.test`,
            display_name: "check",
            infos: { inserver: "127.0.0.1:1", poll_interval: "600" },
            credentials: { username: "u", password: "p" },
          }),
        ),
      );
    }
    const node = await startTestNode(nats.endpoint, caliopenServices(config), { nodeId: "checking" });
    await waitFor("the check giving pollers", () => node.host.list().filter((cell) => cell.kind === "poller").length > 20, 20_000);
    const given = node.host.list().filter((cell) => cell.kind === "poller").length;
    assert.ok(given < IDENTITIES, `the check still runs (${given} given)`);
    const started = Date.now();
    await node.shutdown("test");
    const took = Date.now() - started;
    assert.ok(took < 3_000, `shutdown took ${took} ms`);

    const next = await startTestNode(nats.endpoint, caliopenServices(config), { nodeId: "next" });
    try {
      const registered = () => next.host.list().filter((cell) => cell.kind === "poller").length;
      await waitFor(`${IDENTITIES} pollers`, () => registered() >= IDENTITIES, 120_000);
    } finally {
      await next.shutdown("test over");
    }
  } finally {
    await nats.stop();
  }
});

test.run();
