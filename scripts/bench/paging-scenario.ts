// Scale: what a page of a user's messages, discussions, contacts and identities, and the RCPT TO lookup, cost with 10
// and with 100,000 messages stored for that user. Each operation is called `calls` times in a row, timed
// one by one (p50, p99) with the CPU of this process and of the nats-server per call. The earlier
// implementation's costs (every document of the user read, filtered and sorted; the claims listed under a
// wildcard) are timed beside them as the baseline.
import { randomUUID } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import { forEachLimited } from "../../actors/store/bounded-concurrency.ts";
import { identifierClaimPrefix } from "../../actors/store/identities.ts";
import { userToken } from "../../actors/store/listings.ts";
import { hashed, Lookups } from "../../actors/store/lookups.ts";
import { type Contact, type Message, SCHEMA_VERSION } from "../../actors/store/model.ts";
import { encodeCursor } from "../../actors/store/paging.ts";
import type { ListingDoc } from "../../actors/store/sorted-index.ts";
import { openStore, type Store } from "../../actors/store/store.ts";
import { KvDocuments } from "../../runtime/kv-documents.ts";
import { Subjects } from "../../runtime/subjects.ts";
import { connectBench } from "./bench-connection.ts";
import { childMain } from "./child-protocol.ts";
import { startCpuMeter } from "./cpu-meter.ts";
import type { PagingFigure, PagingOperation, PagingResult, PagingSetup, PagingTask } from "./paging-results.ts";
import { percentile } from "./stats.ts";

const BASE_DATE = Date.UTC(2021, 0, 1);
/** Contacts stored beside the messages: a tenth as many, at least 10. */
const contactsFor = (messages: number) => Math.max(10, Math.floor(messages / 10));
const WRITE_CONCURRENCY = 256;
const DRAIN_AFTER_FAILURE_MS = 20_000;

/** Message k of the user: dated k minutes after BASE_DATE, one in ten a draft. */
function messageAt(userId: string, k: number): Message {
  const id = randomUUID();
  const now = new Date().toISOString();
  return {
    schema: SCHEMA_VERSION,
    user_id: userId,
    message_id: id,
    discussion_id: hashed(`discussion ${k % 500}`),
    raw_msg_id: null,
    subject: `message ${k}`,
    body_plain: `body of message ${k}, `.repeat(20),
    body_html: "",
    date: new Date(BASE_DATE + k * 60_000).toISOString(),
    date_insert: now,
    is_draft: k % 10 === 3,
    is_unread: true,
    is_received: k % 10 !== 3,
    is_answered: false,
    participants: [{ type: "From", address: `sender${k % 1000}@example.org`, label: "", protocol: "email", contact_ids: [] }],
    external_references: { message_id: `<${id}@bench.example>`, parent_id: "", ancestors_ids: [] },
    attachments: [],
    tags: [],
    protocol: "email",
    user_identities: [],
    parent_id: null,
  };
}

function contactAt(userId: string, k: number): Contact {
  const now = new Date().toISOString();
  return {
    schema: SCHEMA_VERSION,
    user_id: userId,
    contact_id: randomUUID(),
    title: `Contact ${String(k).padStart(6, "0")}`,
    given_name: "",
    family_name: "",
    emails: [{ address: `contact${k}@example.org`, label: "", type: "home", is_primary: true }],
    identities: [],
    derived: null,
    date_insert: now,
    date_update: now,
  };
}

interface Bench {
  nc: NatsConnection;
  store: Store;
  messages: KvDocuments<Message>;
  contacts: KvDocuments<Contact>;
  lookups: Lookups;
  listingDocs: KvDocuments<ListingDoc>;
  userId: string;
  address: string;
  /** The user's messages by k (date order). */
  stored: Message[];
  contactCount: number;
}

/**
 * Grows the user's store to `size` messages as the earlier version stored them (documents by concurrent
 * puts, no index entries), then has a process that never saw the user list them: the first listing
 * builds the user's indexes from every document, as it does for data stored before them.
 */
async function growTo(bench: Bench, size: number): Promise<PagingSetup> {
  const from = bench.stored.length;
  const added = Array.from({ length: size - from }, (_, i) => messageAt(bench.userId, from + i));
  const contactsWanted = contactsFor(size);
  const newContacts = Array.from({ length: contactsWanted - bench.contactCount }, (_, i) => contactAt(bench.userId, bench.contactCount + i));
  const writeStarted = performance.now();
  await forEachLimited(added, WRITE_CONCURRENCY, async (message) => {
    await bench.messages.put(`${message.user_id}.${message.message_id}`, message);
    await bench.lookups.set(`msgref.${message.user_id}.${hashed(message.external_references.message_id)}`, message.message_id);
  });
  await forEachLimited(newContacts, WRITE_CONCURRENCY, (contact) => bench.contacts.put(`${contact.user_id}.${contact.contact_id}`, contact));
  const writeMs = performance.now() - writeStarted;
  const user = userToken(bench.userId);
  await bench.listingDocs.delete(`m.${user}.built`);
  await bench.listingDocs.delete(`c.${user}.built`);
  await bench.listingDocs.delete(`d.${user}.built`);
  const indexStarted = performance.now();
  const stranger = await openStore({ nc: bench.nc, subjects: new Subjects(""), secrets: null });
  await stranger.messages.list(bench.userId, { limit: 1 });
  await stranger.contacts.list(bench.userId, { limit: 1 });
  await stranger.messages.listDiscussions(bench.userId, { limit: 1 });
  const indexMs = performance.now() - indexStarted;
  bench.stored.push(...added);
  bench.contactCount = contactsWanted;
  return { size, contacts: contactsWanted, writeMs, indexMs };
}

/** What the earlier version did for a first page: every document of the user, filtered, sorted, cut. */
async function oldFirstPage(bench: Bench): Promise<number> {
  const all = await bench.messages.values(`${bench.userId}.*`);
  all.sort((a, b) => b.date.localeCompare(a.date) || b.message_id.localeCompare(a.message_id));
  return all.slice(0, 50).length;
}

/** Discussions without an index: every message of the user read, grouped, sorted by last activity, counted. */
async function oldDiscussionsPage(bench: Bench): Promise<number> {
  const all = await bench.messages.values(`${bench.userId}.*`);
  const groups = new Map<string, { last: Message; count: number; unread: number }>();
  for (const message of all) {
    if (message.is_draft) continue;
    const group = groups.get(message.discussion_id) ?? { last: message, count: 0, unread: 0 };
    if (message.date > group.last.date) group.last = message;
    group.count += 1;
    if (message.is_unread) group.unread += 1;
    groups.set(message.discussion_id, group);
  }
  return [...groups.values()].sort((a, b) => b.last.date.localeCompare(a.last.date)).slice(0, 10).length;
}

/** What the earlier version did at RCPT TO: the claims under the identifier listed by STREAM.INFO, then each identity. */
async function oldRcptLookup(bench: Bench): Promise<number> {
  const claims = await bench.lookups.targetsWithKeys(`${identifierClaimPrefix("email", bench.address)}*`);
  const found = await Promise.all(claims.map(({ key, target }) => bench.store.identities.get(key.split(".").at(-1) as string, target)));
  return found.filter((identity) => identity !== null).length;
}

function operations(bench: Bench): Record<PagingOperation, () => Promise<number>> {
  const { store, userId } = bench;
  const size = bench.stored.length;
  // The middle of the listing, newest first: message k = size - 1 - size/2.
  const middle = bench.stored[size - 1 - Math.floor(size / 2)] as Message;
  const mid = encodeCursor([middle.date, middle.message_id]);
  // The newest message outside drafts: its discussion is the first listed.
  const newest = [...bench.stored].reverse().find((message) => !message.is_draft) as Message;
  // Created messages come after every stored one (and are left out of the cursor's arithmetic).
  let createdAt = 10_000_000 + size * 10;
  return {
    "messages-first-10": async () => (await store.messages.list(userId, { limit: 10 })).items.length,
    "messages-first-50": async () => (await store.messages.list(userId, { limit: 50 })).items.length,
    "messages-cursor-mid": async () => (await store.messages.list(userId, { limit: 50, after: mid })).items.length,
    "messages-offset-mid": async () => (await store.messages.list(userId, { limit: 50, offset: Math.floor(size / 2) })).items.length,
    "drafts-first-50": async () => (await store.messages.list(userId, { limit: 50, is_draft: true })).items.length,
    "contacts-first-50": async () => (await store.contacts.list(userId, { limit: 50 })).items.length,
    "discussions-first-10": async () => (await store.messages.listDiscussions(userId, { limit: 10 })).items.length,
    "discussion-messages-first-10": async () => (await store.messages.discussionMessages(userId, newest.discussion_id, { limit: 10 })).items.length,
    identities: async () => (await store.identities.list(userId)).length,
    "rcpt-lookup": async () => (await store.identities.byIdentifier("email", bench.address)).length,
    "old-rcpt-lookup": () => oldRcptLookup(bench),
    "old-discussions-first-10": () => oldDiscussionsPage(bench),
    // After the other listings: when it fails, its reads still in flight would weigh on them.
    "old-messages-first-50": () => oldFirstPage(bench),
    // Stored last, so that the listings above see the sizes stated.
    "messages-create": async () => {
      await store.messages.create(messageAt(userId, createdAt++));
      return 1;
    },
    "old-messages-create": async () => {
      const message = messageAt(userId, createdAt++);
      await bench.messages.create(`${userId}.${message.message_id}`, message);
      return 1;
    },
  };
}

/** Calls per operation: the whole-listing baseline and deep offsets cost seconds at 100,000, so fewer. */
function callsFor(operation: PagingOperation, size: number, calls: number): number {
  if (size <= 1_000) return calls;
  if (operation === "old-messages-first-50" || operation === "old-discussions-first-10") return 3;
  if (operation === "messages-offset-mid") return Math.min(calls, 20);
  return calls;
}

async function measure(bench: Bench, task: PagingTask): Promise<PagingFigure[]> {
  const figures: PagingFigure[] = [];
  const size = bench.stored.length;
  const all = Object.entries(operations(bench)) as [PagingOperation, () => Promise<number>][];
  // A tenth as many untimed calls of every listing first (none of the few slow ones): compiled code and
  // warm caches on both sides before any is timed. A failure there shows again when timed.
  for (const [operation, call] of all) {
    if (operation.endsWith("-create")) continue;
    for (let i = 0; i < Math.floor(callsFor(operation, size, task.calls) / 10); i++) await call().catch(() => 0);
  }
  for (const [operation, call] of all) {
    const calls = callsFor(operation, size, task.calls);
    const samples: number[] = [];
    let items = 0;
    let error: string | undefined;
    const cpu = startCpuMeter(task.serverPid);
    try {
      for (let i = 0; i < calls; i++) {
        const started = performance.now();
        try {
          items = await call();
        } finally {
          samples.push(performance.now() - started);
        }
      }
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
    }
    const used = cpu();
    figures.push({
      operation,
      size,
      calls: samples.length,
      p50Ms: percentile(samples, 50),
      p99Ms: percentile(samples, 99),
      clientCpuMs: used.selfMs / Math.max(1, samples.length),
      serverCpuMs: used.otherMs / Math.max(1, samples.length),
      items,
      ...(error !== undefined && { error }),
    });
    // What a failed call left in flight (the whole-listing baseline's reads) drains before the next operation.
    if (error !== undefined) await new Promise((resolve) => setTimeout(resolve, DRAIN_AFTER_FAILURE_MS));
    process.stderr.write(
      `paging: ${operation} at ${size}: p50 ${percentile(samples, 50).toFixed(2)} ms over ${samples.length} calls${error === undefined ? "" : ` (failed: ${error})`}\n`,
    );
  }
  return figures;
}

async function run(task: PagingTask): Promise<PagingResult> {
  const nc = await connectBench(task.endpoint, "bench-paging");
  try {
    const store = await openStore({ nc, subjects: new Subjects(""), secrets: null });
    const userId = randomUUID();
    const address = `paging-${userId.slice(0, 8)}@bench.example`;
    for (const identifier of [address, `second-${address}`, `third-${address}`]) {
      await store.identities.create({ user_id: userId, type: "local", protocol: "email", identifier });
    }
    const bench: Bench = {
      nc,
      store,
      messages: await KvDocuments.open<Message>(nc, "caliopen_messages"),
      contacts: await KvDocuments.open<Contact>(nc, "caliopen_contacts"),
      lookups: await Lookups.open(nc, "caliopen_lookups", 1),
      listingDocs: await KvDocuments.open<ListingDoc>(nc, "caliopen_listings"),
      userId,
      address,
      stored: [],
      contactCount: 0,
    };
    const setups: PagingSetup[] = [];
    const figures: PagingFigure[] = [];
    for (const size of task.sizes) {
      setups.push(await growTo(bench, size));
      figures.push(...(await measure(bench, task)));
    }
    return { setups, figures };
  } finally {
    await nc.close();
  }
}

childMain<PagingTask>(run);
