// The Caliopen services this build runs on a node: the store, the identities worker (poller actors) and
// the HTTP API. The IMAP and Twitter worker families get their real behaviour in later work; until then
// their lifecycle orders are refused with a clear error.
import { pollerFamily } from "../actors/identities/poller.ts";
import { openStore } from "../actors/store/store.ts";
import { OrderEmitter } from "../api/order-emitter.ts";
import { startApi, type RunningApi } from "../api/server.ts";
import type { CaliopenConfig } from "./caliopen-config.ts";
import { identitiesWorkerOrders, rebuildPollers } from "./identities-worker.ts";
import { workerLifecycle, type ServiceFactory } from "./services.ts";

export interface CaliopenServices {
  /** Called once the API listens (its URL), for scripts and tests. */
  onApiStarted?: (url: string) => void;
}

export function caliopenServices(config: CaliopenConfig, hooks: CaliopenServices = {}): ServiceFactory {
  return async (deps) => {
    const store = await openStore({ nc: deps.nc, subjects: deps.subjects, secrets: config.secrets, replicas: deps.replicas });
    let api: RunningApi | null = null;
    let emitter: OrderEmitter | null = null;
    return {
      families: [pollerFamily(store)],
      bindings: (context) => ({
        identitiesWorker: identitiesWorkerOrders(context),
        imap_worker: workerLifecycle("imap", context),
        twitter_worker: workerLifecycle("twitter", context),
      }),
      async start(context) {
        await rebuildPollers(store, context.keyed, deps.logger);
        if (config.api === null) return;
        emitter = new OrderEmitter(deps.nc, deps.subjects, deps.logger);
        api = await startApi({ store, emitter, logger: deps.logger.child({ service: "api" }), deliverTimeoutMs: config.deliverTimeoutMs }, config.api);
        deps.logger.info({ url: api.url }, "HTTP API listening");
        hooks.onApiStarted?.(api.url);
      },
      async stop() {
        await api?.close();
        emitter?.close();
      },
    };
  };
}
