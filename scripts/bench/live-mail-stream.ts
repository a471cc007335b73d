// A steady stream of new mail for the live-accounts scenario: `perSecond` APPENDs to accounts picked at
// random (seeded), each with a Message-ID of its own, started on a fixed grid whatever the previous
// ones take (at most MAX_IN_FLIGHT at once), each labelled with the phase it was sent in.
import { appendOnce } from "./live-appender.ts";
import { corpusMessage, corpusMessageId, crlf, seededRandom } from "./mail-corpus.ts";

/** A stream whose APPENDs pile up is measuring the provider, not the nodes: it stops adding. */
const MAX_IN_FLIGHT = 50;

export interface SentMail {
  messageId: string;
  login: string;
  /** Epoch ms it reached the provider (the APPEND command was sent). */
  sentAt: number;
  phase: string;
}

export interface MailStream {
  sent: SentMail[];
  /** APPENDs that failed or were not started for want of room, by reason. */
  failures: Record<string, number>;
  setPhase(phase: string): void;
  /** Stops starting APPENDs and waits for those in flight. */
  stop(): Promise<void>;
}

export function startMailStream(options: { port: number; password: string; logins: string[]; perSecond: number; tag: string; phase: string }): MailStream {
  const random = seededRandom(4_242);
  const sent: SentMail[] = [];
  const failures: Record<string, number> = {};
  const fail = (reason: string) => (failures[reason] = (failures[reason] ?? 0) + 1);
  const inFlight = new Set<Promise<void>>();
  let phase = options.phase;
  let sequence = 0;
  const started = performance.now();
  const spacingMs = 1000 / options.perSecond;

  const sendOne = () => {
    const index = sequence++;
    if (inFlight.size >= MAX_IN_FLIGHT) return void fail("too many APPENDs in flight");
    const login = options.logins[Math.floor(random() * options.logins.length)] as string;
    const messageId = corpusMessageId(index, options.tag);
    const raw = Buffer.from(crlf(corpusMessage(index, { to: `${login}@remote.test`, tag: options.tag, maxBytes: 4 * 1024 }).text), "utf8");
    const label = phase;
    const appending = appendOnce(options.port, login, options.password, raw)
      .then((sentAt) => void sent.push({ messageId, login, sentAt, phase: label }))
      .catch((err: Error) => void fail(err.message.slice(0, 120)))
      .finally(() => inFlight.delete(appending));
    inFlight.add(appending);
  };

  let timer: NodeJS.Timeout | null = null;
  const tick = () => {
    // On the grid: as many as are due since the start, so a late timer does not lower the rate.
    const due = Math.floor((performance.now() - started) / spacingMs) + 1;
    while (sequence < due) sendOne();
    timer = setTimeout(tick, Math.max(1, started + due * spacingMs - performance.now()));
  };
  tick();

  return {
    sent,
    failures,
    setPhase: (next) => (phase = next),
    async stop() {
      if (timer !== null) clearTimeout(timer);
      await Promise.all([...inFlight]);
    },
  };
}
