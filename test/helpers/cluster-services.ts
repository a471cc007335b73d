// The services test clusters run: counter actors keyed by remote_id, added by add_worker on
// imap_worker and fed `sync` orders on IMAPfetcher, as the IMAP workers will be. `deliver` requests on
// outboundIMAP are forwarded to the counter as a `get`: a keyed request answered by its actor, wherever
// it runs, as a real `deliver` is.
import { routeToActor } from "../../runtime/cluster/actor-router.ts";
import { type ServiceSet, workerLifecycle } from "../../supervisors/services.ts";
import { counterFamily } from "./counter-family.ts";

export function clusterTestServices(): ServiceSet {
  return {
    families: [counterFamily("counter")],
    bindings: (context) => ({
      imap_worker: workerLifecycle("counter", context),
      IMAPfetcher: { sync: routeToActor(context, { kind: "counter", keyField: "remote_id" }) },
      outboundIMAP: { deliver: routeToActor(context, { kind: "counter", keyField: "remote_id", type: "get" }) },
    }),
  };
}
