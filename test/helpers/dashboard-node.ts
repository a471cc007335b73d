// A node serving the API (and so the dashboard) on a test nats-server, with an admin and a user who
// is not one, and a connection of the test's own to play on the bus.
import type { NatsConnection } from "@nats-io/transport-node";
import { createUser } from "../../actors/accounts/create-user.ts";
import { openStore, type Store } from "../../actors/store/store.ts";
import { type DashboardLimits, DEFAULT_DASHBOARD_LIMITS } from "../../api/dashboard-limits.ts";
import { DEFAULT_HTTP_SETTINGS } from "../../api/http-settings.ts";
import { Subjects } from "../../runtime/subjects.ts";
import type { CaliopenConfig } from "../../supervisors/caliopen-config.ts";
import { caliopenServices } from "../../supervisors/caliopen-services.ts";
import type { RunningNode } from "../../supervisors/node.ts";
import { startTestNats, type TestNats } from "./nats-server.ts";
import { startTestNode, testCaliopenConfig } from "./test-node.ts";

export interface DashboardNode {
  nats: TestNats;
  node: RunningNode;
  nodeId: string;
  /** The API's base URL. */
  url: string;
  nc: NatsConnection;
  store: Store;
  /** An admin's token and user id. */
  admin: { token: string; user_id: string; contact_id: string };
  /** A user who is not an admin. */
  user: { token: string; user_id: string };
  stop(): Promise<void>;
}

/** `overrides`: other Caliopen settings (the servers the node may reach, say). */
export async function startDashboardNode(
  nodeId: string,
  dashboard: Partial<DashboardLimits> = {},
  overrides: Partial<CaliopenConfig> = {},
): Promise<DashboardNode> {
  const nats = await startTestNats();
  const config = testCaliopenConfig({
    api: { host: "127.0.0.1", port: 0, http: { ...DEFAULT_HTTP_SETTINGS, dashboard: { ...DEFAULT_DASHBOARD_LIMITS, ...dashboard } } },
    ...overrides,
  });
  let url = "";
  const node = await startTestNode(nats.endpoint, caliopenServices(config, { onApiStarted: (started) => (url = started) }), { nodeId });
  const nc = await nats.connect();
  const store = await openStore({ nc, subjects: new Subjects(""), secrets: config.secrets });
  const admin = await createUser(store, { name: "root", admin: true });
  const user = await createUser(store, { name: "alice" });
  return {
    nats,
    node,
    nodeId,
    url,
    nc,
    store,
    admin: { token: admin.token, user_id: admin.user.user_id, contact_id: admin.user.contact_id },
    user: { token: user.token, user_id: user.user.user_id },
    async stop() {
      await nc.close();
      await node.shutdown("test over");
      await nats.stop();
    },
  };
}
