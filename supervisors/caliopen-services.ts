// The Caliopen services this build runs on a node: the store, the identities worker (poller actors), the
// IMAP and Twitter bridges (imap and twitter worker actors), the SMTP bridge (outbound deliver and the
// inbound SMTP server), the inbound processors (an `inbound` actor per user, for mail and DMs), ContactAction
// and KeyAction (a `contact` actor per contact) and the HTTP API.
import type { Logger } from "pino";
import { contactFamily } from "../actors/contacts/contact-actor.ts";
import { pollerFamily } from "../actors/identities/poller.ts";
import { imapWorkerFamily } from "../actors/imap/imap-worker.ts";
import { RECEIVED_BATCH_LIMITS } from "../actors/inbound/import-batcher.ts";
import { ImportBatchers } from "../actors/inbound/import-batchers.ts";
import { type ImportBatchOrder, type ImportBatchWire, importBatchMessage } from "../actors/inbound/inbound-batch.ts";
import { INBOUND_KIND, inboundProcessorFamily, PROCESS_EMAIL, PROCESS_TWITTER } from "../actors/inbound/inbound-processor.ts";
import { type InboundSmtpServer, startInboundSmtp } from "../actors/mail/inbound-smtp-server.ts";
import { deliverDraft } from "../actors/mail/outbound-smtp.ts";
import type { InboundOrder } from "../actors/messages/inbound-import.ts";
import { DestinationPolicy } from "../actors/network/destination-policy.ts";
import { AccessTokens } from "../actors/oauth2/access-tokens.ts";
import { SecretKeyMismatch } from "../actors/store/secret-key-check.ts";
import { openStore, type Store } from "../actors/store/store.ts";
import { twitterWorkerFamily } from "../actors/twitter/twitter-worker.ts";
import { OrderEmitter } from "../api/order-emitter.ts";
import { type PreparedApi, prepareApi, type RunningApi } from "../api/server.ts";
import { actorOf, replyWithinMs } from "../contract/contract-table.ts";
import { requestActor } from "../runtime/cluster/actor-requests.ts";
import { type Admission, routeToActor } from "../runtime/cluster/actor-router.ts";
import type { KeyedOrders } from "../runtime/cluster/keyed-orders.ts";
import type { Reply } from "../runtime/reply.ts";
import { Requester } from "../runtime/requester.ts";
import type { SecretBox } from "../runtime/secret-box.ts";
import { StartupError } from "../runtime/startup-error.ts";
import type { CaliopenConfig } from "./caliopen-config.ts";
import { contactRoutes } from "./contact-routes.ts";
import { identitiesWorkerOrders } from "./identities-worker.ts";
import { remoteIdentityAdmission } from "./identity-admission.ts";
import { MailMetrics } from "./mail-metrics.ts";
import { nodeNotifications } from "./node-notifications.ts";
import { platformServers } from "./platform-servers.ts";
import { PollerCheck } from "./poller-check.ts";
import { type ServiceFactory, workerLifecycle } from "./services.ts";
import { existingUserAdmission } from "./user-admission.ts";

export interface CaliopenServices {
  /** Called once the API listens (its URL), for scripts and tests. */
  onApiStarted?: (url: string) => void;
  /** Called once the inbound SMTP server listens (its port). */
  onSmtpStarted?: (port: number) => void;
}

/** The SMTP bridge waits for its recipient's import as long as the contract's `process_inbound` requester. */
const PROCESS_INBOUND_TIMEOUT_MS = replyWithinMs("inboundSMTP", "process_inbound");
/**
 * An import batch's wait for its reply: its raws wait behind the user's queue (256 raws at most, a few
 * ms each). Not much longer than `process_inbound`'s, so that a batch whose actor died with it fails its
 * raws soon (retried by the next sync) rather than stalling the sync.
 */
const IMPORT_BATCH_TIMEOUT_MS = 15_000;

export function caliopenServices(config: CaliopenConfig, hooks: CaliopenServices = {}): ServiceFactory {
  return async (deps) => {
    const store = await openStore({ nc: deps.nc, subjects: deps.subjects, secrets: config.secrets, replicas: deps.replicas });
    await checkSecretKeys(store, config.secrets, deps.logger);
    // Every server a user or a contact's address names goes through this (IMAP, SMTP, WKD).
    const destinations = new DestinationPolicy(config.destinations, platformServers(config.mail, deps.nc));
    const notifications = await nodeNotifications(deps, store, config.notifications);
    // One per node: the IMAP workers and the SMTP bridge share its refreshes (one request per identity at a time).
    const accessTokens =
      config.oauth2Providers.size === 0 ? null : new AccessTokens(store.identities, config.oauth2Providers, deps.logger.child({ service: "oauth2" }));
    let api: RunningApi | null = null;
    let emitter: OrderEmitter | null = null;
    let preparedApi: PreparedApi | null = null;
    if (config.api !== null) {
      // Built now, before the node joins its cluster: building takes long enough to delay its heartbeats.
      emitter = new OrderEmitter(deps.nc, deps.subjects, deps.logger);
      preparedApi = await prepareApi(
        {
          store,
          emitter,
          destinations,
          oauth2Providers: config.oauth2Providers,
          logger: deps.logger.child({ service: "api" }),
          deliverTimeoutMs: config.deliverTimeoutMs,
          ...(config.mail.smtp !== null && { maxMailBytes: config.mail.smtp.maxSize }),
          metrics: deps.metrics,
          dashboard: { nc: deps.nc, subjects: deps.subjects },
          notifications: notifications.feed,
        },
        config.api.http,
      );
    }
    let smtpServer: InboundSmtpServer | null = null;
    let pollerCheck: PollerCheck | null = null;
    // The IMAP workers' import batches go straight to the user's inbound actor, wherever it runs (the
    // keyed orders are the node's, known once it binds its services).
    const requester = new Requester(deps.nc);
    let keyed: KeyedOrders | null = null;
    const userAdmission = existingUserAdmission(store);
    const sendBatch =
      (admit: Admission<ImportBatchWire> | undefined, timeoutMs: number) =>
      async (order: ImportBatchOrder): Promise<unknown> => {
        if (keyed === null) throw new Error("the node does not route orders yet");
        const message = importBatchMessage(order);
        return requestActor(
          keyed,
          requester,
          { kind: INBOUND_KIND, key: order.user_id, message, input: { user_id: order.user_id }, ...(admit !== undefined && { admit }) },
          timeoutMs,
        );
      };
    const mailMetrics = new MailMetrics(deps.metrics.registry);
    const sendImapBatch = sendBatch(userAdmission, IMPORT_BATCH_TIMEOUT_MS);
    const importBatch = (order: ImportBatchOrder) => mailMetrics.importBatch("imap", order.raw_ids.length, () => sendImapBatch(order));
    // The inbound SMTP server's recipients were just read from the store, each a local identity naming
    // its user: nothing to admit. It waits for a batch as long as for `process_inbound`.
    const receivedMail = new ImportBatchers(sendBatch(undefined, PROCESS_INBOUND_TIMEOUT_MS), RECEIVED_BATCH_LIMITS);
    return {
      families: [
        pollerFamily(store),
        imapWorkerFamily(store, { ...config.imap, destinations, importBatch, accessTokens }),
        twitterWorkerFamily(store, { ...config.twitter, notifications: notifications.publisher }),
        inboundProcessorFamily(store, { mail: { ...config.mail.inbound }, onImported: notifications.imported }),
        contactFamily({ store, keys: config.keys, destinations }),
      ],
      bindings: (context) => {
        keyed = context.keyed;
        const workerInput = (payload: { remote_id: string; user_id: string }) => ({ remote_id: payload.remote_id, user_id: payload.user_id });
        // A worker exists only for a remote account of its protocol; remove_worker also cleans up after a deleted one.
        const imapAccount = remoteIdentityAdmission(store, { idField: "remote_id", protocols: ["imap", "email"], afterDeletion: ["remove_worker"] });
        const twitterAccount = remoteIdentityAdmission(store, { idField: "remote_id", protocols: ["twitter"], afterDeletion: ["remove_worker"] });
        // Each order goes to the actor the contract table names for it (its kind and key field).
        const imapWorker = { input: workerInput, admit: imapAccount };
        const twitterWorker = { input: workerInput, admit: twitterAccount };
        // One inbound processor per user takes both subjects' imports; only existing users get one.
        const inbound = (subject: "inboundSMTP" | "inboundTwitter", type: string) =>
          mailMetrics.importHandler(
            subject === "inboundSMTP" ? "smtp" : "twitter",
            routeToActor(context, {
              ...actorOf(subject, "process_inbound"),
              type,
              input: (payload) => ({ user_id: payload.user_id }),
              admit: userAdmission,
              startOnRequest: true,
            }),
          );
        const smtp = {
          store,
          relay: config.mail.relay,
          destinations,
          accessTokens,
          host: config.mail.host,
          logger: deps.logger.child({ service: "smtp-bridge" }),
        };
        return {
          identitiesWorker: identitiesWorkerOrders(context, store),
          imap_worker: workerLifecycle(actorOf("imap_worker", "add_worker").kind, context, imapAccount),
          IMAPfetcher: {
            sync: routeToActor(context, { ...actorOf("IMAPfetcher", "sync"), ...imapWorker }),
            fullfetch: routeToActor(context, { ...actorOf("IMAPfetcher", "fullfetch"), ...imapWorker }),
            store_flags: routeToActor(context, { ...actorOf("IMAPfetcher", "store_flags"), ...imapWorker }),
            move_to_trash: routeToActor(context, { ...actorOf("IMAPfetcher", "move_to_trash"), ...imapWorker }),
          },
          outboundIMAP: { deliver: routeToActor(context, { ...actorOf("outboundIMAP", "deliver"), ...imapWorker }) },
          outboundSMTP: { deliver: (payload) => notifications.sending(payload, () => deliverDraft(smtp, payload)) },
          inboundSMTP: { process_inbound: inbound("inboundSMTP", PROCESS_EMAIL) },
          twitter_worker: workerLifecycle(actorOf("twitter_worker", "add_worker").kind, context, twitterAccount),
          twitter_dm: {
            sync: routeToActor(context, { ...actorOf("twitter_dm", "sync"), ...twitterWorker }),
            deliver: routeToActor(context, { ...actorOf("twitter_dm", "deliver"), ...twitterWorker }),
          },
          // Each contact's orders, one at a time, in its actor.
          ...contactRoutes(context, store),
          inboundTwitter: { process_inbound: inbound("inboundTwitter", PROCESS_TWITTER) },
        };
      },
      async start(context) {
        // In the background: the node takes orders meanwhile, and a check of 100,000 identities takes seconds.
        pollerCheck = new PollerCheck(store, context, deps.logger, config.pollerCheckEveryMs);
        pollerCheck.start();
        if (config.mail.smtp !== null) {
          // Each recipient's import goes to the user's inbound actor, wherever it runs.
          const importRaw = (order: InboundOrder, size: number): Promise<Reply> =>
            mailMetrics.importOne("smtp", () => receivedMail.import(order.user_id, order.remote_id, order.message_id, size));
          smtpServer = await startInboundSmtp(
            // The server binds its own `service`; a second binding would repeat the key in every line.
            { store, importRaw, logger: deps.logger, metrics: mailMetrics.smtp },
            { ...config.mail.smtp, serverName: config.mail.host },
          );
          hooks.onSmtpStarted?.(smtpServer.port);
        }
        if (config.api === null || preparedApi === null) return;
        api = await preparedApi.listen(config.api);
        deps.logger.info({ url: api.url }, "HTTP API listening");
        hooks.onApiStarted?.(api.url);
      },
      async stop() {
        await pollerCheck?.stop();
        await smtpServer?.close();
        await notifications.close();
        await (api ?? preparedApi)?.close();
        emitter?.close();
        requester.close();
      },
    };
  };
}

/** Before anything is sealed: this node's keys must open the deployment's key check (the first node records it). */
async function checkSecretKeys(store: Store, secrets: SecretBox, logger: Logger): Promise<void> {
  let check: { kid: string; recordedNow: boolean };
  try {
    check = await store.keyCheck.verify(secrets);
  } catch (err) {
    if (err instanceof SecretKeyMismatch) throw new StartupError(err.message);
    throw err;
  }
  if (check.recordedNow) logger.info({ kid: check.kid }, "recorded the deployment's secret key check");
  else if (check.kid !== secrets.kid) {
    logger.warn(
      { recorded: check.kid, sealing: secrets.kid },
      "this node seals with another key than the deployment's key check names: once every node has this key first, run caliopen secrets rotate",
    );
  }
}
