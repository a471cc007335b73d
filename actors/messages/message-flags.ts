// A synced message's state and its flags on a server, both ways: `\Seen` is read (not `is_unread`),
// `\Flagged` is `is_flagged`, `\Answered` is `is_answered`, and flags are tags as docs/decisions.md §4
// imports them (`\Flagged` is the tag `flagged` too, keywords are tags as they are). A change on the
// server changes those and leaves what the user set here alone (a tag of their own stays); a change here
// is what to add and remove on the server: a keyword for each tag that can be one and is not a system
// flag's.
import { hasFlag, importedTags } from "../mail/imported-tags.ts";
import type { Message } from "../store/model.ts";

export const SEEN = "\\Seen";
export const FLAGGED = "\\Flagged";
export const ANSWERED = "\\Answered";

/** A tag that can be an IMAP keyword (an atom, RFC 3501, of a reasonable length). */
const KEYWORD = /^[A-Za-z0-9$_.:+-]{1,64}$/;
/** Tags that are system flags here (imported from `\Flagged`…): never written back as keywords. */
const SYSTEM_TAGS = new Set(["seen", "flagged", "answered", "deleted", "draft", "recent", "important"]);

function isKeywordTag(tag: string): boolean {
  return KEYWORD.test(tag) && !SYSTEM_TAGS.has(tag.toLowerCase());
}

export type FlagState = Pick<Message, "is_unread" | "is_answered" | "tags"> & { is_flagged?: boolean };

/** The message's state after the server's flags went from `before` to `after`; null when nothing changes. */
export function followServerFlags(message: FlagState, before: string[], after: string[]): FlagState | null {
  const dropped = new Set(importedTags(before).map((tag) => tag.toLowerCase()));
  const added = importedTags(after);
  const kept = message.tags.filter((tag) => !dropped.has(tag.toLowerCase()));
  const tags = [...kept, ...added.filter((tag) => !kept.some((known) => known.toLowerCase() === tag.toLowerCase()))];
  const next: FlagState = {
    is_unread: !hasFlag(after, SEEN),
    is_flagged: hasFlag(after, FLAGGED),
    is_answered: hasFlag(after, ANSWERED),
    tags,
  };
  const same =
    next.is_unread === message.is_unread &&
    next.is_flagged === (message.is_flagged ?? false) &&
    next.is_answered === message.is_answered &&
    next.tags.length === message.tags.length &&
    next.tags.every((tag, index) => tag === message.tags[index]);
  return same ? null : next;
}

/** What to add to and remove from a copy whose flags are `current` for it to show the message's state. */
export function flagChanges(message: FlagState, current: string[]): { add: string[]; remove: string[] } {
  const add: string[] = [];
  const remove: string[] = [];
  const want = (flag: string, wanted: boolean) => {
    if (wanted && !hasFlag(current, flag)) add.push(flag);
    if (!wanted && hasFlag(current, flag)) remove.push(flag);
  };
  want(SEEN, !message.is_unread);
  want(FLAGGED, message.is_flagged ?? false);
  const tags = new Set(message.tags.filter(isKeywordTag).map((tag) => tag.toLowerCase()));
  const keywords = current.filter((flag) => !flag.startsWith("\\"));
  for (const tag of message.tags) if (isKeywordTag(tag) && !keywords.some((keyword) => keyword.toLowerCase() === tag.toLowerCase())) add.push(tag);
  for (const keyword of keywords) if (!tags.has(keyword.toLowerCase()) && importedTags([keyword]).length > 0) remove.push(keyword);
  return { add, remove };
}

/** The flags a copy has once `changes` are made. */
export function withChanges(current: string[], changes: { add: string[]; remove: string[] }): string[] {
  const removed = new Set(changes.remove.map((flag) => flag.toLowerCase()));
  const kept = current.filter((flag) => !removed.has(flag.toLowerCase()));
  return [...kept, ...changes.add.filter((flag) => !hasFlag(kept, flag))];
}
