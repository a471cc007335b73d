// What an IMAP server may make a node hold or wait for. A hostile or broken server can announce a
// literal of gigabytes (imapflow buffers up to 1 GiB of one by default), send a line that never ends,
// flood one answer with tokens, or trickle bytes forever; these bounds turn each into an error on the
// worker instead of a node out of memory or a sync that never ends.

const MiB = 1024 * 1024;

/** Bodies up to this size (as the server announces it) are fetched whole; larger ones in pieces of this size. */
export const FETCH_PIECE_BYTES = MiB;

/**
 * imapflow's parser limits, for every connection: what one answer may make the node buffer. A body is
 * fetched whole only when announced at most FETCH_PIECE_BYTES, else in pieces of that size, so no
 * honest answer carries a larger literal.
 */
export const IMAP_PARSER_LIMITS = {
  // Twice a piece: room for servers whose RFC822.SIZE is a little off.
  maxLiteralSize: 2 * FETCH_PIECE_BYTES,
  // A UID SEARCH answer for a million messages is about 8 MiB.
  maxLineLength: 16 * MiB,
  maxResponseSize: 16 * MiB,
  // Each token costs about 100 bytes of heap while an answer is parsed; no honest answer has this many.
  maxResponseTokens: 50_000,
} as const;

/** The limits of one sync (CALIOPEN_IMAP_MAX_MESSAGE_SIZE, CALIOPEN_IMAP_TIMEOUT_MS, CALIOPEN_IMAP_SYNC_MAX_MS). */
export interface ImapSyncLimits {
  /** A message announced (or found while fetched) larger than this is skipped, never held whole. */
  maxMessageBytes: number;
  /** A sync with no progress for this long (a silent or trickling server) fails. */
  timeoutMs: number;
  /** A sync running longer than this fails; what it imported is kept and the next one goes on from there. */
  syncMaxMs: number;
}

export const DEFAULT_IMAP_SYNC_LIMITS: ImapSyncLimits = {
  maxMessageBytes: 50 * MiB,
  timeoutMs: 60_000,
  syncMaxMs: 2 * 3600_000,
};

/** Sizes as operators read them: `52428800` → `50 MiB`. */
export function byteSize(bytes: number): string {
  if (bytes >= MiB) return `${Number((bytes / MiB).toFixed(1))} MiB`;
  if (bytes >= 1024) return `${Number((bytes / 1024).toFixed(1))} KiB`;
  return `${bytes} bytes`;
}

/** The limit's error codes of imapflow's parser, as a sentence: these close the connection. */
export function describeParserLimit(err: Error & { code?: string }): string | null {
  switch (err.code) {
    case "LiteralTooLarge":
    case "LineTooLarge":
    case "ResponseTooLarge":
    case "TooManyTokens":
      return `the IMAP server sent more in one answer than a node accepts (${err.message}); the connection was closed`;
    default:
      return null;
  }
}
