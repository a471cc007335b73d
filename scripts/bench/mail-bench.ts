// What the mail scenarios share: a real node running the Caliopen services (supervisors/caliopen-services.ts,
// as `npm start` wires them) on the bench's nats-server, a store of the scenario's own to create users and
// identities and to count what was stored, a private Dovecot (scripts/local-servers/dovecot.ts, the one the tests
// use) filled straight through its Maildir, and CPU accounting for the servers involved.
import { randomBytes } from "node:crypto";
import { chown, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import type { ImapFlow } from "imapflow";
import { createUser } from "../../actors/accounts/create-user.ts";
import type { Identity } from "../../actors/store/model.ts";
import { openStore, type Store } from "../../actors/store/store.ts";
import { KvDocuments } from "../../runtime/kv-documents.ts";
import type { NatsEndpoint } from "../../runtime/nats-endpoint.ts";
import { Subjects } from "../../runtime/subjects.ts";
import { caliopenConfigFromEnv } from "../../supervisors/caliopen-config.ts";
import { caliopenServices } from "../../supervisors/caliopen-services.ts";
import { type RunningNode, startNode } from "../../supervisors/node.ts";
import { defaultNodeId, type NodeConfig, nodeConfigFromEnv } from "../../supervisors/node-config.ts";
import { PASSWORD, startTestDovecot, type TestDovecot } from "../local-servers/dovecot.ts";
import { connectBench } from "./bench-connection.ts";
import { registerCleanup } from "./cleanup.ts";
import { processTreeCpuMs } from "./cpu-meter.ts";
import { tallyingLogger } from "./log-tally.ts";
import { type CorpusOptions, corpusMessage, type MailKind } from "./mail-corpus.ts";

export { PASSWORD };

/** The platform's mail domain in the mail scenarios: local users are `<name>@MAIL_HOST`. */
export const MAIL_HOST = "platform.test";

export interface MailNode {
  node: RunningNode;
  /** The HTTP API's URL, when the node runs it. */
  apiUrl: string | null;
  /** The inbound SMTP server's port, when the node runs one. */
  smtpPort: number | null;
  /** The scenario's own store, on a connection of its own (same buckets, same secret key). */
  store: Store;
  nc: NatsConnection;
  /** What the runtime warned about, by message. */
  warnings(): Record<string, number>;
  /** Stored messages of a user: the keys of the messages bucket under that user (no document read). */
  storedMessages(userId: string): Promise<number>;
  stop(): Promise<void>;
}

export interface MailNodeOptions {
  smtp: boolean;
  /** Run the HTTP API (on a free loopback port). */
  api?: boolean;
  push: boolean;
  /** The bench's own servers (`host:port`) the node may reach, in clear like the baselines (CALIOPEN_ALLOWED_DESTINATIONS). */
  admit?: string[];
  /** CALIOPEN_SECRET_KEY, base64: nodes of one deployment and the scenario's store must share it (a fresh one when absent). */
  secretKey?: string;
  nodeId?: string;
  /** CALIOPEN_FAILURE_DETECTION_MS, when not the default (a bench that varies it). */
  failureDetectionMs?: number;
}

/** The node's settings as `npm start` reads them from its environment (so every service gets its defaults). */
function mailNodeEnv(options: MailNodeOptions, secretKey: string): NodeJS.ProcessEnv {
  return {
    CALIOPEN_SECRET_KEY: secretKey,
    CALIOPEN_HTTP: options.api === true ? "127.0.0.1:0" : "off",
    CALIOPEN_SMTP: options.smtp ? "127.0.0.1:0" : "off",
    CALIOPEN_MAIL_HOST: MAIL_HOST,
    CALIOPEN_SMTP_RELAY: "127.0.0.1:1",
    CALIOPEN_IMAP_PUSH: options.push ? "on" : "off",
    CALIOPEN_KEYSERVER: "off",
    CALIOPEN_ALLOWED_DESTINATIONS: (options.admit ?? []).map((server) => `${server}+cleartext`).join(","),
  };
}

export const newSecretKey = (): string => randomBytes(32).toString("base64");

/** The scenario's view of the platform's data: a store on a connection of its own. */
export interface MailStore {
  store: Store;
  nc: NatsConnection;
  /** Stored messages of a user: the keys of the messages bucket under that user (no document read). */
  storedMessages(userId: string): Promise<number>;
}

/** A store on its own connection, reading what nodes sharing `secretKey` write. */
export async function openMailStore(endpoint: NatsEndpoint, secretKey: string): Promise<MailStore & { close(): Promise<void> }> {
  const dataDir = await mkdtemp(join(tmpdir(), "caliopen-bench-mail-store-"));
  const secrets = caliopenConfigFromEnv(mailNodeEnv({ smtp: false, push: false }, secretKey), dataDir, tallyingLogger().logger).secrets;
  const nc = await connectBench(endpoint, "bench mail store");
  const store = await openStore({ nc, subjects: new Subjects(""), secrets });
  const messages = await KvDocuments.open(nc, "caliopen_messages");
  return {
    store,
    nc,
    storedMessages: async (userId) => (await messages.keys(`${userId}.*`)).length,
    close: async () => {
      await nc.close().catch(() => undefined);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export async function startMailNode(endpoint: NatsEndpoint, options: MailNodeOptions): Promise<MailNode> {
  const dataDir = await mkdtemp(join(tmpdir(), "caliopen-bench-mail-node-"));
  const tally = tallyingLogger();
  const secretKey = options.secretKey ?? newSecretKey();
  const config = caliopenConfigFromEnv(mailNodeEnv(options, secretKey), dataDir, tally.logger);
  let smtpPort: number | null = null;
  let apiUrl: string | null = null;
  const nodeConfig: NodeConfig = {
    ...nodeConfigFromEnv({}),
    nats: endpoint,
    dataDir,
    nodeId: options.nodeId ?? `bench-mail-${defaultNodeId()}`,
    ...(options.failureDetectionMs !== undefined && { failureDetectionMs: options.failureDetectionMs }),
    shutdownGraceMs: 5_000,
  };
  const node = await startNode(
    nodeConfig,
    caliopenServices(config, { onSmtpStarted: (port) => (smtpPort = port), onApiStarted: (url) => (apiUrl = url) }),
    tally.logger,
  );
  const view = await openMailStore(endpoint, secretKey);
  let stopped: Promise<void> | null = null;
  const stop = () =>
    (stopped ??= (async () => {
      unregister();
      await view.close();
      await node.shutdown("bench finished");
      await rm(dataDir, { recursive: true, force: true });
    })());
  const unregister = registerCleanup(stop);
  return {
    node,
    apiUrl,
    smtpPort,
    store: view.store,
    nc: view.nc,
    warnings: tally.counts,
    storedMessages: view.storedMessages,
    stop,
  };
}

/** A user of the platform with a local address `<name>@MAIL_HOST`. */
export async function benchUser(store: Store, name: string): Promise<{ userId: string; address: string }> {
  const address = `${name}@${MAIL_HOST}`;
  const created = await createUser(store, { name, email: address });
  return { userId: created.user.user_id, address };
}

/** A remote IMAP identity of `userId` pointing at `login`'s mailbox on the bench Dovecot (`identifier`: unique per user). */
export function imapIdentity(store: Store, userId: string, dovecot: TestDovecot, login: string, identifier = `${login}@remote.test`): Promise<Identity> {
  return store.identities.create({
    user_id: userId,
    type: "remote",
    protocol: "imap",
    identifier,
    display_name: `Bench ${login}`,
    infos: { inserver: dovecot.server, outserver: "127.0.0.1:1" },
    credentials: { username: login, password: PASSWORD },
  });
}

/**
 * Makes a bench identity inactive once its run is over (or it was not picked): every later node builds
 * a poller for each active identity at its start, which syncs it at once, and a sync of a mailbox
 * imported before reads it all again. Those syncs are no part of the next run.
 */
export async function retireIdentity(store: Store, userId: string, identityId: string): Promise<void> {
  await store.identities.update(userId, identityId, () => ({ fields: { status: "inactive" } }));
}

export interface BenchDovecot extends TestDovecot {
  /** CPU ms of the Dovecot master and every process it started (live ones and those it reaped). */
  cpuMs(): number;
}

export async function startBenchDovecot(): Promise<BenchDovecot> {
  const dovecot = await startTestDovecot();
  const unregister = registerCleanup(() => dovecot.stop());
  const masterPid = Number((await readFile(join(dovecot.dir, "run", "master.pid"), "utf8")).trim());
  return {
    ...dovecot,
    cpuMs: () => processTreeCpuMs(masterPid),
    stop: async () => {
      unregister();
      await dovecot.stop();
    },
  };
}

const MAIL_UID = 8;
const MAIL_GID = 8;
const WRITERS = 32;

export interface FilledMailbox {
  messages: number;
  bytes: number;
  kinds: Record<MailKind, number>;
  /** Writing the Maildir files. */
  writeMs: number;
  /** Dovecot taking them in: the first STATUS and SELECT (uidlist, index). */
  indexMs: number;
}

/**
 * Fills `login`'s INBOX with `count` corpus messages by writing Maildir files straight into
 * `<dovecot dir>/mail/<login>/Maildir/new/` as the `mail` user, then lets Dovecot index them with one
 * SELECT: much faster than APPENDing them one by one over IMAP (see `appendRate`).
 */
export async function fillMaildir(dovecot: TestDovecot, login: string, count: number, corpus: CorpusOptions): Promise<FilledMailbox> {
  const home = join(dovecot.dir, "mail", login);
  const maildir = join(home, "Maildir");
  for (const dir of [home, maildir, join(maildir, "new"), join(maildir, "cur"), join(maildir, "tmp")]) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chown(dir, MAIL_UID, MAIL_GID);
  }
  const kinds: Record<MailKind, number> = { plain: 0, alternative: 0, mixed: 0 };
  let bytes = 0;
  const started = performance.now();
  const base = Math.floor(Date.now() / 1000);
  let next = 0;
  const writer = async () => {
    for (let index = next++; index < count; index = next++) {
      const message = corpusMessage(index, corpus);
      const content = Buffer.from(message.text, "utf8");
      kinds[message.kind] += 1;
      bytes += content.length;
      // S= physical size, W= size with CRLF line ends (what IMAP reports): Dovecot need not read the file for either.
      const lines = message.text.split("\n").length - 1;
      const file = join(maildir, "new", `${base}.M${index}P${process.pid}.bench,S=${content.length},W=${content.length + lines}`);
      await writeFile(file, content, { mode: 0o600 });
      await chown(file, MAIL_UID, MAIL_GID);
    }
  };
  await Promise.all(Array.from({ length: WRITERS }, writer));
  const writeMs = performance.now() - started;
  const indexStarted = performance.now();
  const client = await dovecot.client(login, PASSWORD);
  try {
    const status = await client.status("INBOX", { messages: true });
    const seen = status === false ? 0 : status.messages;
    if (seen !== count) throw new Error(`Dovecot sees ${seen} messages in ${login}'s INBOX, ${count} were written`);
    const lock = await client.getMailboxLock("INBOX");
    lock.release();
  } finally {
    await client.logout().catch(() => client.close());
  }
  return { messages: count, bytes, kinds, writeMs, indexMs: performance.now() - indexStarted };
}

/** Messages/s of APPEND over one imapflow connection (one at a time), on a mailbox of its own. */
export async function appendRate(
  dovecot: TestDovecot,
  login: string,
  count: number,
  corpus: CorpusOptions,
): Promise<{ count: number; ms: number; perSecond: number }> {
  const client = await dovecot.client(login, PASSWORD);
  try {
    const raws = Array.from({ length: count }, (_, index) => Buffer.from(corpusMessage(index, corpus).text.replace(/\n/g, "\r\n"), "utf8"));
    const started = performance.now();
    for (const raw of raws) await client.append("INBOX", raw);
    const ms = performance.now() - started;
    return { count, ms, perSecond: (count * 1000) / ms };
  } finally {
    await client.logout().catch(() => client.close());
  }
}

/** Reads every message of the mailbox once (UID, flags, BODY.PEEK[]) and drops it: the transport's floor. */
export async function fetchAll(client: ImapFlow, mailbox = "INBOX"): Promise<{ messages: number; bytes: number }> {
  const lock = await client.getMailboxLock(mailbox, { readOnly: true });
  let messages = 0;
  let bytes = 0;
  try {
    for await (const message of client.fetch("1:*", { uid: true, flags: true, source: true })) {
      messages += 1;
      bytes += message.source?.length ?? 0;
    }
  } finally {
    lock.release();
  }
  return { messages, bytes };
}

/** Writes a file and returns its path (for configuration files of the baselines). */
export async function writeConfig(dir: string, name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

/**
 * With BENCH_CPU_PROFILE=<dir>, records a V8 CPU profile of this process from now until the returned
 * function is called (e.g. only the node's part of a scenario) into `<dir>/<name>.cpuprofile`.
 */
export async function profilePhase(name: string): Promise<() => Promise<void>> {
  const dir = process.env.BENCH_CPU_PROFILE;
  if (dir === undefined || dir === "") return async () => undefined;
  const { Session } = await import("node:inspector/promises");
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: 200 });
  await session.post("Profiler.start");
  return async () => {
    const { profile } = await session.post("Profiler.stop");
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, `${name}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  };
}
