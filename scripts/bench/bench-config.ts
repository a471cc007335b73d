// The sizes of one bench run. BENCH_QUICK=1 shrinks everything for a smoke run of a minute or so.

export interface BenchConfig {
  quick: boolean;
  /** `count` orders per round for the core-NATS subscriber, `durableCount` for consumers going through JetStream (much slower). */
  orders: { count: number; durableCount: number; window: number; keys: number; rounds: number; warmup: number; flushEvery: number };
  dispatch: { keys: number; events: number; warmup: number };
  requests: { keys: number; warmup: number; sequential: number; concurrent: number; inFlight: number; rounds: number };
  activation: { small: number; large: number; snapshot: number; window: number };
  /** Actors spread over three node processes, and how many kill -9 / join cycles to time. */
  failover: { actors: number; runs: number };
  /**
   * Mail (scenarios 5–7): messages in the IMAP mailbox and APPENDs timed to compare filling methods;
   * SMTP messages (after a warm-up of a tenth), parallel sessions and body size; push APPENDs and their spacing.
   */
  mail: {
    imapMessages: number;
    appendSample: number;
    smtpMessages: number;
    smtpSessions: number;
    smtpSize: number;
    pushAppends: number;
    pushSpacingMs: number;
  };
  /**
   * Section 8 runs the request and orders scenarios once per kind of server. Smaller than scenarios 1
   * and 2 in a full run: with the node role, nats-server's cost per message grows with the replies it
   * delivered in the last two minutes, and full sizes would outlast the scenario timeout.
   */
  tls: { requests: BenchConfig["requests"]; orders: BenchConfig["orders"] };
  /** Section 9: remote identities stored for the cold start; one user's messages at each paging measure, and calls per operation. */
  scale: { identities: number; pagingSizes: number[]; pagingCalls: number };
}

export function benchConfig(env: NodeJS.ProcessEnv = process.env): BenchConfig {
  const quick = env.BENCH_QUICK === "1" || env.BENCH_QUICK === "true";
  if (quick) {
    return {
      quick,
      orders: { count: 20_000, durableCount: 5_000, window: 2_000, keys: 1_000, rounds: 1, warmup: 5_000, flushEvery: 5_000 },
      dispatch: { keys: 1_000, events: 20_000, warmup: 5_000 },
      requests: { keys: 1_000, warmup: 2_000, sequential: 500, concurrent: 10_000, inFlight: 100, rounds: 1 },
      activation: { small: 2_000, large: 10_000, snapshot: 1_000, window: 256 },
      failover: { actors: 300, runs: 1 },
      mail: { imapMessages: 1_000, appendSample: 100, smtpMessages: 300, smtpSessions: 4, smtpSize: 10 * 1024, pushAppends: 10, pushSpacingMs: 500 },
      tls: {
        requests: { keys: 1_000, warmup: 2_000, sequential: 500, concurrent: 10_000, inFlight: 100, rounds: 1 },
        orders: { count: 20_000, durableCount: 5_000, window: 2_000, keys: 1_000, rounds: 1, warmup: 5_000, flushEvery: 5_000 },
      },
      scale: { identities: 5_000, pagingSizes: [10, 10_000], pagingCalls: 50 },
    };
  }
  return {
    quick,
    orders: { count: 200_000, durableCount: 20_000, window: 2_000, keys: 1_000, rounds: 3, warmup: 20_000, flushEvery: 5_000 },
    dispatch: { keys: 1_000, events: 100_000, warmup: 20_000 },
    requests: { keys: 1_000, warmup: 10_000, sequential: 5_000, concurrent: 50_000, inFlight: 100, rounds: 3 },
    activation: { small: 10_000, large: 100_000, snapshot: 10_000, window: 256 },
    failover: { actors: 1_000, runs: 5 },
    mail: { imapMessages: 10_000, appendSample: 500, smtpMessages: 2_000, smtpSessions: 4, smtpSize: 10 * 1024, pushAppends: 30, pushSpacingMs: 1_000 },
    tls: {
      requests: { keys: 1_000, warmup: 5_000, sequential: 2_000, concurrent: 10_000, inFlight: 100, rounds: 3 },
      orders: { count: 100_000, durableCount: 5_000, window: 2_000, keys: 1_000, rounds: 3, warmup: 5_000, flushEvery: 5_000 },
    },
    scale: { identities: 100_000, pagingSizes: [10, 100_000], pagingCalls: 200 },
  };
}
