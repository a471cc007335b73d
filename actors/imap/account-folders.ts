// Which of an account's mailboxes a sync follows: the server's list (LIST with special-use attributes,
// and STATUS in the same command where the server has LIST-STATUS), filtered by the identity's
// `infos.mailboxes` setting and matched with the cursors the worker keeps. A folder seen for the first
// time starts from nothing; a folder renamed on the server (a new path with the UIDVALIDITY of a path
// gone from the list) keeps its cursor, so nothing is fetched again; a folder gone from the list, or
// left out by the setting, is forgotten. INBOX is always followed: the new-mail watch is on it.
import { randomBytes } from "node:crypto";
import type { ImapFlow } from "imapflow";
import type { SyncCursor } from "./mailbox-sync.ts";

export const INBOX = "INBOX";
/**
 * Folders one account syncs at most: each has a cursor in the worker's snapshot, which must stay small
 * whatever a server lists. The rest are left out, and the sync says how many.
 */
export const MAX_FOLDERS = 250;
/** A longer path is left out: it becomes part of the snapshot and of each raw's trace. */
export const MAX_FOLDER_PATH_BYTES = 512;
/**
 * Left out unless the setting says otherwise: Trash and Junk (what the user threw away), and a
 * server's "all mail" view (Gmail's [Gmail]/All Mail), which holds every message of every other folder
 * again.
 */
export const DEFAULT_EXCLUDED = ["\\Trash", "\\Junk", "\\All"];
/** Entries of either list of `infos.mailboxes` at most, and their length (checked by the API). */
export const MAX_SELECTION_ENTRIES = 100;

/** Where the sync of one folder stands. */
export interface FolderCursor extends SyncCursor {
  path: string;
  /** The folder's own id, kept when it is renamed: where its messages' server copies are recorded. */
  folder_id: string;
  /** Its special-use attribute (`\Sent`, `\Drafts`…), null when it has none. */
  special_use: string | null;
  /** Its messages up to `lastseenuid` when last looked at: fewer now means some were expunged. */
  present?: number | null;
}

/**
 * The identity's `infos.mailboxes`: `include` (null: every folder) and `exclude`, each entry a path
 * (which covers its subfolders too) or a special-use attribute (`\Sent`). Without either, `exclude` is
 * DEFAULT_EXCLUDED; a setting that names folders either way says all it wants.
 */
export interface FolderSelection {
  include: string[] | null;
  exclude: string[];
}

/** A folder as the server lists it. */
export interface ListedFolder {
  path: string;
  delimiter: string;
  special_use: string | null;
  /** From STATUS: null when the server gave none. */
  uidvalidity: string | null;
  uidnext: number | null;
  /** null when the server keeps no mod-sequences (no CONDSTORE). */
  highestmodseq: string | null;
}

/**
 * What changed in the account's folders since the last sync that listed them, for operators: the
 * first CHANGES_LISTED of each kind by name (it is kept in the worker's history), `more` counts the rest.
 */
export interface FolderChanges {
  added: string[];
  renamed: { from: string; to: string }[];
  removed: string[];
  more: number;
  /** Folders listed but not synced: past MAX_FOLDERS, or with a path past MAX_FOLDER_PATH_BYTES. */
  left_out: number;
}

const CHANGES_LISTED = 5;

export interface FolderPlan {
  /** The folders to sync, INBOX first, each with the cursor it starts from. */
  folders: { cursor: FolderCursor; upToDate: boolean }[];
  changes: FolderChanges;
}

/** The selection an identity's `infos.mailboxes` asks for; the default for anything else. */
export function folderSelection(setting: unknown): FolderSelection {
  const strings = (value: unknown): string[] | null =>
    Array.isArray(value) && value.every((entry) => typeof entry === "string") ? value.slice(0, MAX_SELECTION_ENTRIES) : null;
  const fields = typeof setting === "object" && setting !== null ? (setting as Record<string, unknown>) : {};
  const include = strings(fields.include);
  return { include, exclude: strings(fields.exclude) ?? (include === null ? DEFAULT_EXCLUDED : []) };
}

/** The account's selectable folders, with their UIDVALIDITY and UIDNEXT. */
export async function listFolders(client: ImapFlow): Promise<ListedFolder[]> {
  const listed = await client.list({ statusQuery: { uidValidity: true, uidNext: true, highestModseq: true } });
  return listed
    .filter((entry) => !entry.flags.has("\\Noselect") && !entry.flags.has("\\NonExistent"))
    .map((entry) => ({
      path: entry.path.toUpperCase() === INBOX ? INBOX : entry.path,
      delimiter: entry.delimiter ?? "/",
      special_use: entry.specialUse ?? null,
      uidvalidity: entry.status?.uidValidity === undefined ? null : String(entry.status.uidValidity),
      uidnext: typeof entry.status?.uidNext === "number" ? entry.status.uidNext : null,
      highestmodseq: entry.status?.highestModseq === undefined ? null : String(entry.status.highestModseq),
    }));
}

/**
 * The folders to sync and their cursors, from the server's list, the known cursors and the selection.
 * `open`: the folder the connection has open, whose STATUS a server may answer from the session's own
 * view (stale until a NOOP): never taken for up to date.
 */
export function planFolders(listed: ListedFolder[], known: FolderCursor[], selection: FolderSelection, open: string | null = null): FolderPlan {
  const usable = listed.filter((folder) => Buffer.byteLength(folder.path, "utf8") <= MAX_FOLDER_PATH_BYTES);
  const selected = usable
    .filter(
      (folder) => folder.path === INBOX || ((selection.include === null || matchesAny(folder, selection.include)) && !matchesAny(folder, selection.exclude)),
    )
    .sort((a, b) => (a.path === INBOX ? -1 : b.path === INBOX ? 1 : a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const kept = selected.slice(0, MAX_FOLDERS);
  const listedPaths = new Set(listed.map((folder) => folder.path));
  const byPath = new Map(known.map((cursor) => [cursor.path, cursor]));
  // Cursors of paths no longer listed: a folder renamed on the server is one of them, under a new path.
  const vanished = known.filter((cursor) => !listedPaths.has(cursor.path) && cursor.uidvalidity !== null);
  const added: string[] = [];
  const renamed: { from: string; to: string }[] = [];
  const taken = new Set<string>();
  const folders = kept.map((folder) => {
    let cursor = byPath.get(folder.path);
    if (cursor === undefined && folder.uidvalidity !== null) {
      const renamedFrom = vanished.find((old) => old.uidvalidity === folder.uidvalidity && !taken.has(old.path));
      if (renamedFrom !== undefined) {
        cursor = renamedFrom;
        renamed.push({ from: renamedFrom.path, to: folder.path });
      }
    }
    if (cursor === undefined) added.push(folder.path);
    else taken.add(cursor.path);
    const from: FolderCursor = {
      ...(cursor ?? { uidvalidity: null, lastseenuid: 0, failed_uids: [] }),
      path: folder.path,
      folder_id: cursor?.folder_id ?? newFolderId(),
      special_use: folder.special_use,
    };
    return { cursor: from, upToDate: folder.path !== open && upToDate(from, folder) };
  });
  const removed = known.filter((cursor) => !taken.has(cursor.path)).map((cursor) => cursor.path);
  const more = Math.max(0, added.length - CHANGES_LISTED) + Math.max(0, renamed.length - CHANGES_LISTED) + Math.max(0, removed.length - CHANGES_LISTED);
  const changes: FolderChanges = {
    added: added.slice(0, CHANGES_LISTED),
    renamed: renamed.slice(0, CHANGES_LISTED),
    removed: removed.slice(0, CHANGES_LISTED),
    more,
    left_out: listed.length - usable.length + (selected.length - kept.length),
  };
  return { folders, changes };
}

/**
 * Nothing new since the cursor, by the folder's STATUS: no need to open it. Without a mod-sequence to
 * say that no flag changed and nothing was expunged, a folder is always looked at.
 */
function upToDate(cursor: FolderCursor, folder: ListedFolder): boolean {
  return (
    folder.uidnext !== null &&
    cursor.uidvalidity === folder.uidvalidity &&
    folder.uidnext - 1 <= cursor.lastseenuid &&
    cursor.failed_uids.length === 0 &&
    folder.highestmodseq !== null &&
    folder.highestmodseq === (cursor.highestmodseq ?? null)
  );
}

/** A new folder's id: random, so that a folder deleted and created again under its name is another. */
export function newFolderId(): string {
  return randomBytes(6).toString("hex");
}

function matchesAny(folder: ListedFolder, entries: string[]): boolean {
  return entries.some((entry) => {
    if (entry.startsWith("\\")) return folder.special_use !== null && folder.special_use.toLowerCase() === entry.toLowerCase();
    const path = entry.toUpperCase() === INBOX ? INBOX : entry;
    return folder.path === path || folder.path.startsWith(`${path}${folder.delimiter}`);
  });
}

/** The cursors with this folder's in place (or added, after the others). */
export function withFolder(folders: FolderCursor[], folder: FolderCursor): FolderCursor[] {
  return folders.some((known) => known.path === folder.path) ? folders.map((known) => (known.path === folder.path ? folder : known)) : [...folders, folder];
}

/** Whether a run changed anything in the account's folders. */
export function hasChanges(changes: FolderChanges): boolean {
  return changes.added.length > 0 || changes.renamed.length > 0 || changes.removed.length > 0 || changes.more > 0 || changes.left_out > 0;
}
