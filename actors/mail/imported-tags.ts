// Tags imported with fetched mail (docs/decisions.md §4, imap-bridge): the IMAP flags and Gmail labels of a
// message, which the IMAP bridge hands over in synthetic headers it prepends to the raw (original §5.6):
// `X-Fetched-Imap-Flags` and `X-Fetched-X-GM-LABELS`, each the base64 of the values joined by CRLF, with
// the folder and UID the mail came from.

/** Flags that say where a message is or what the client did with it, not what it is about: never tags. */
const DROPPED = new Set(
  ["\\Seen", "\\Recent", "\\Sent", "\\Trash", "\\Junk", "\\Drafts", "\\Archive", "\\All", "$Forwarded", "$MDNSent", "NonJunk"].map((flag) =>
    flag.toLowerCase(),
  ),
);

/**
 * The tags kept from IMAP flags and Gmail labels: the dropped flags go (case-insensitively), a system
 * flag loses its backslash and is lower-cased (`\Flagged` → `flagged`, `\Important` → `important`),
 * keywords and labels stay as they are. De-duplicated case-insensitively, first spelling kept.
 */
export function importedTags(flags: string[]): string[] {
  const seen = new Set<string>();
  const tags: string[] = [];
  for (const raw of flags) {
    const flag = raw.trim();
    if (flag === "" || DROPPED.has(flag.toLowerCase())) continue;
    const tag = flag.startsWith("\\") ? flag.slice(1).toLowerCase() : flag;
    if (tag === "" || seen.has(tag.toLowerCase())) continue;
    seen.add(tag.toLowerCase());
    tags.push(tag);
  }
  return tags;
}

/** Header names the IMAP bridge writes; the values are `encodeFetchedHeader` of the flags / labels. */
export const FETCHED_FLAGS_HEADER = "X-Fetched-Imap-Flags";
export const FETCHED_LABELS_HEADER = "X-Fetched-X-GM-LABELS";
/** The folder (base64 of its path), the UID in it, and its special use (`\Sent`), as they are. */
export const FETCHED_BOX_HEADER = "X-Fetched-Imap-Box";
export const FETCHED_UID_HEADER = "X-Fetched-Imap-Uid";
export const FETCHED_SPECIAL_USE_HEADER = "X-Fetched-Imap-Special-Use";
/** The folder's own id (kept through renames) and the UIDVALIDITY its UID belongs to. */
export const FETCHED_FOLDER_HEADER = "X-Fetched-Imap-Folder";
export const FETCHED_UIDVALIDITY_HEADER = "X-Fetched-Imap-Uidvalidity";

/** Where a fetched mail was on its server, from the headers the IMAP bridge prepended. */
export interface FetchedTrace {
  mailbox: string;
  folderId: string | null;
  uidvalidity: string | null;
  uid: number | null;
  specialUse: string | null;
  /** Its IMAP flags when it was fetched (`\Seen`, `\Flagged`, keywords). */
  flags: string[];
}

/** Whether a flag list has this system flag (`\Seen`), as servers spell it in any case. */
export function hasFlag(flags: string[], flag: string): boolean {
  const wanted = flag.toLowerCase();
  return flags.some((entry) => entry.trim().toLowerCase() === wanted);
}

/** base64 of the values joined by CRLF. */
export function encodeFetchedHeader(values: string[]): string {
  return Buffer.from(values.join("\r\n"), "utf8").toString("base64");
}

/** The values of an `encodeFetchedHeader` value; folding whitespace is ignored, empty values dropped. */
export function decodeFetchedHeader(value: string): string[] {
  const compact = value.replace(/\s+/g, "");
  if (compact === "") return [];
  return Buffer.from(compact, "base64")
    .toString("utf8")
    .split(/\r?\n/)
    .filter((entry) => entry !== "");
}
