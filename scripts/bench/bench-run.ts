// One bench run as the orchestrator assembles it and the report reads it: the machine, the sizes, and
// each scenario process's outcome.
import type { BenchConfig } from "./bench-config.ts";
import type { BenchSecurity } from "./bench-security.ts";
import type { FailoverResult } from "./failover-scenario.ts";
import type { LiveAccountsResult } from "./live-accounts-results.ts";
import type { MachineInfo } from "./machine-info.ts";
import type { NotifyResult } from "./notify-results.ts";
import type { PagingResult } from "./paging-results.ts";
import type { ActivationResult, DispatchResult, ImapResult, OrdersResult, PushResult, RequestsResult, SmtpResult } from "./results.ts";
import type { ColdStartResult } from "./scale-results.ts";

/** One scenario process's result, with the load other processes put on the machine meanwhile (cores). */
export type Outcome<T> = ({ label: string; ok: true; value: T } | { label: string; ok: false; error: string }) & { backgroundCores: number };

/** A scenario of section 8: the request or orders scenario against a server secured as `security` says. */
export type SecuredOutcome =
  | { security: BenchSecurity; kind: "requests"; outcome: Outcome<RequestsResult> }
  | { security: BenchSecurity; kind: "orders"; outcome: Outcome<OrdersResult> };

export interface BenchRun {
  machine: MachineInfo;
  config: BenchConfig;
  durationMs: number;
  /** Cores kept busy by processes that are not this bench, on average over the run. */
  backgroundCores: number;
  orders: Outcome<OrdersResult>[];
  dispatch: Outcome<DispatchResult> | null;
  requests: Outcome<RequestsResult>[];
  activation: Outcome<ActivationResult>[];
  failover: Outcome<FailoverResult> | null;
  imap: Outcome<ImapResult> | null;
  smtp: Outcome<SmtpResult> | null;
  push: Outcome<PushResult> | null;
  /** Section 10, null when it did not run. */
  notify: Outcome<NotifyResult> | null;
  tls: SecuredOutcome[];
  /** Section 9: each of its scenarios, null when it did not run. */
  scale: { coldStart: Outcome<ColdStartResult> | null; paging: Outcome<PagingResult> | null; live: Outcome<LiveAccountsResult> | null };
}
