// The HTTP API on a real nats-server, without a node: the test plays the services that consume its
// orders. `wire` records every contract order the API emits, seen from a separate connection.
import { randomBytes } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import { createUser } from "../../actors/accounts/create-user.ts";
import type { OAuth2Providers } from "../../actors/oauth2/oauth2-providers.ts";
import { openStore, type Store } from "../../actors/store/store.ts";
import { DEFAULT_HTTP_SETTINGS, type HttpSettings } from "../../api/http-settings.ts";
import { OrderEmitter } from "../../api/order-emitter.ts";
import { type RunningApi, startApi } from "../../api/server.ts";
import { CONTRACT, isPublishOnly } from "../../contract/contract-table.ts";
import { DurableIntake } from "../../runtime/durable-intake.ts";
import { decodeJson } from "../../runtime/json.ts";
import { type Logger, silentLogger } from "../../runtime/logger.ts";
import { SecretBox } from "../../runtime/secret-box.ts";
import { Subjects } from "../../runtime/subjects.ts";
import { sleep, waitFor } from "../../scripts/local-servers/wait.ts";
import { callApi, type HttpResult } from "./api-client.ts";
import { startTestNats, type TestNats } from "./nats-server.ts";

export interface WireOrder {
  subject: string;
  payload: Record<string, unknown>;
  /**
   * Whether it came with a reply inbox: a request, or a published order stored by JetStream on its way
   * (the inbox then gets the stream's acknowledgement).
   */
  request: boolean;
}

export interface ApiFixture {
  nats: TestNats;
  store: Store;
  api: RunningApi;
  /** The test's own connection (the one that records the wire). */
  nc: NatsConnection;
  /** Contract orders seen on the wire since the last `takeWire()`. */
  takeWire(): WireOrder[];
  /** Waits for `count` orders on the wire, and a little longer so that extra ones show; as {subject, payload}. */
  expectWire(count: number): Promise<{ subject: string; payload: Record<string, unknown> }[]>;
  /** A new user with a bearer token (and a local identity when `email` is given). */
  user(
    name: string,
    options?: { admin?: boolean; email?: string; recovery_email?: string },
  ): Promise<{ user_id: string; token: string; identity_id: string | null; contact_id: string }>;
  call(method: string, path: string, token: string | null, body?: unknown): Promise<HttpResult>;
  /** Another API over the same store and NATS (as another node's), with other edges; stopped with the fixture. */
  another(http: Partial<HttpSettings>, options?: { logger?: Logger }): Promise<RunningApi>;
  stop(): Promise<void>;
}

export async function startApiFixture(
  options: { deliverTimeoutMs?: number; intakeStream?: boolean; http?: Partial<HttpSettings>; maxMailBytes?: number; oauth2Providers?: OAuth2Providers } = {},
): Promise<ApiFixture> {
  const nats = await startTestNats();
  const apiNc = await nats.connect();
  const nc = await nats.connect();
  const subjects = new Subjects("");
  // What a node would have made: the stream that stores published orders as they are sent.
  if (options.intakeStream !== false)
    await DurableIntake.open(
      apiNc,
      subjects,
      CONTRACT.filter(isPublishOnly).map((spec) => spec.subject),
      1,
    );
  const store = await openStore({ nc: apiNc, subjects, secrets: new SecretBox(randomBytes(32)) });
  const emitter = new OrderEmitter(apiNc, subjects, silentLogger());
  const context = {
    store,
    emitter,
    logger: silentLogger(),
    deliverTimeoutMs: options.deliverTimeoutMs ?? 1_000,
    ...(options.maxMailBytes !== undefined && { maxMailBytes: options.maxMailBytes }),
    ...(options.oauth2Providers !== undefined && { oauth2Providers: options.oauth2Providers }),
  };
  const loopback = { host: "127.0.0.1", port: 0 };
  const api = await startApi(context, loopback, { ...DEFAULT_HTTP_SETTINGS, ...options.http });
  const others: RunningApi[] = [];

  let wire: WireOrder[] = [];
  for (const spec of CONTRACT) {
    nc.subscribe(spec.subject, {
      callback: (_err, msg) => {
        const decoded = decodeJson(msg.data);
        if (decoded.ok)
          wire.push({ subject: msg.subject, payload: decoded.value as Record<string, unknown>, request: msg.reply !== undefined && msg.reply !== "" });
      },
    });
  }
  await nc.flush();

  const takeWire = () => {
    const taken = wire;
    wire = [];
    return taken;
  };
  return {
    nats,
    store,
    api,
    nc,
    takeWire,
    async expectWire(count) {
      const seen: WireOrder[] = [];
      await waitFor(`${count} order(s) on the wire`, () => {
        seen.push(...takeWire());
        return seen.length >= count;
      });
      await sleep(150);
      seen.push(...takeWire());
      return seen.map(({ subject, payload }) => ({ subject, payload }));
    },
    async user(name, userOptions = {}) {
      const created = await createUser(store, { name, ...userOptions });
      return { user_id: created.user.user_id, token: created.token, identity_id: created.identity?.identity_id ?? null, contact_id: created.user.contact_id };
    },
    call: (method, path, token, body) => callApi(api.url, token, method, path, body),
    async another(http, anotherOptions = {}) {
      const other = await startApi({ ...context, logger: anotherOptions.logger ?? context.logger }, loopback, { ...DEFAULT_HTTP_SETTINGS, ...http });
      others.push(other);
      return other;
    },
    async stop() {
      for (const other of others) await other.close();
      await api.close();
      emitter.close();
      await nats.stop();
    },
  };
}
