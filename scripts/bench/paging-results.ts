// The paging scenario's task and result: listing and lookup costs at a few sizes of one user's store.
import type { NatsEndpoint } from "../../runtime/nats-endpoint.ts";

export interface PagingTask {
  endpoint: NatsEndpoint;
  /** The nats-server's pid, to charge its CPU to the calls. */
  serverPid: number;
  /** Messages stored for the user at each measurement, ascending (10, then 100,000). */
  sizes: number[];
  /** Calls timed per operation and size (fewer for the old whole-listing baseline). */
  calls: number;
}

export const PAGING_OPERATIONS = [
  "messages-first-10",
  "messages-first-50",
  "messages-cursor-mid",
  "messages-offset-mid",
  "drafts-first-50",
  "contacts-first-50",
  "discussions-first-10",
  "discussion-messages-first-10",
  "identities",
  "rcpt-lookup",
  "messages-create",
  "old-messages-first-50",
  "old-rcpt-lookup",
  "old-discussions-first-10",
  "old-messages-create",
] as const;
export type PagingOperation = (typeof PAGING_OPERATIONS)[number];

export interface PagingFigure {
  operation: PagingOperation;
  /** Messages stored for the user. */
  size: number;
  calls: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU per call of the scenario process (the client) and of the nats-server. */
  clientCpuMs: number;
  serverCpuMs: number;
  /** Items the call answered (a page's length, identities found). */
  items: number;
  /** Why the calls stopped, when one failed (the figures are then those of the calls before it). */
  error?: string;
}

export interface PagingSetup {
  size: number;
  /** Contacts stored for the user at that size. */
  contacts: number;
  /** Time to store the documents added for this size (concurrent puts: messages, their Message-ID claims, contacts). */
  writeMs: number;
  /** Time of the first listing of a process that never saw the user: it builds the indexes from every document. */
  indexMs: number;
}

export interface PagingResult {
  setups: PagingSetup[];
  figures: PagingFigure[];
}
