// Which folders a sync follows, without a server: the selection (`infos.mailboxes`), renames found by
// UIDVALIDITY, what a hostile list cannot make the worker keep, and a context saved before folders.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import {
  type FolderCursor,
  folderSelection,
  type ListedFolder,
  MAX_FOLDER_PATH_BYTES,
  MAX_FOLDERS,
  planFolders,
} from "../../../actors/imap/account-folders.ts";
import { upgradeImapContext } from "../../../actors/imap/imap-worker-state.ts";

const test = suite("account folders");

const folder = (
  path: string,
  uidvalidity: string | null = "1",
  uidnext: number | null = 1,
  special_use: string | null = null,
  highestmodseq: string | null = "9",
): ListedFolder => ({ path, delimiter: "/", special_use, uidvalidity, uidnext, highestmodseq });
const cursor = (
  path: string,
  uidvalidity: string | null,
  lastseenuid: number,
  failed_uids: number[] = [],
  highestmodseq: string | null = "9",
): FolderCursor => ({
  path,
  folder_id: `id-${path}`,
  special_use: null,
  uidvalidity,
  lastseenuid,
  failed_uids,
  highestmodseq,
});
const paths = (plan: ReturnType<typeof planFolders>) => plan.folders.map((entry) => entry.cursor.path);

const LISTED = [
  folder("Archive", "10"),
  folder("Archive/2025", "11"),
  folder("INBOX", "12"),
  folder("Sent", "13", 1, "\\Sent"),
  folder("Trash", "14", 1, "\\Trash"),
  folder("Junk", "15", 1, "\\Junk"),
  folder("[Gmail]/All Mail", "16", 1, "\\All"),
];

test("by default every folder but Trash, Junk and All Mail, INBOX first", () => {
  assert.equal(paths(planFolders(LISTED, [], folderSelection(undefined))), ["INBOX", "Archive", "Archive/2025", "Sent"]);
  assert.equal(paths(planFolders(LISTED, [], folderSelection(null))), ["INBOX", "Archive", "Archive/2025", "Sent"]);
  assert.equal(
    paths(planFolders(LISTED, [], folderSelection({ exclude: "Trash" }))),
    ["INBOX", "Archive", "Archive/2025", "Sent"],
    "a malformed setting is the default",
  );
});

test("include and exclude: paths cover their subfolders, special-use names match any case, INBOX always", () => {
  assert.equal(paths(planFolders(LISTED, [], folderSelection({ include: ["Archive"] }))), ["INBOX", "Archive", "Archive/2025"]);
  assert.equal(paths(planFolders(LISTED, [], folderSelection({ include: ["\\trash"] }))), ["INBOX", "Trash"], "asked for: Trash is synced");
  assert.equal(paths(planFolders(LISTED, [], folderSelection({ exclude: ["Archive", "\\SENT"] }))), ["INBOX", "Junk", "Trash", "[Gmail]/All Mail"]);
  assert.equal(paths(planFolders(LISTED, [], folderSelection({ include: ["Sent"], exclude: ["INBOX"] }))), ["INBOX", "Sent"], "INBOX cannot be left out");
  assert.equal(paths(planFolders(LISTED, [], folderSelection({ include: ["Arch"] }))), ["INBOX"], "a prefix that is not a parent matches nothing");
});

test("a renamed folder keeps its cursor (its UIDVALIDITY under a new path); a folder gone is forgotten; one with new mail is not up to date", () => {
  const known = [cursor("INBOX", "12", 4), cursor("Projects", "20", 7), cursor("Old", "21", 2)];
  const plan = planFolders([folder("INBOX", "12", 5), folder("Work", "20", 8), folder("Receipts", "22", 1)], known, folderSelection(undefined));
  assert.equal(plan.changes, { added: ["Receipts"], renamed: [{ from: "Projects", to: "Work" }], removed: ["Old"], more: 0, left_out: 0 });
  assert.equal(
    plan.folders.map((entry) => [entry.cursor.path, entry.cursor.lastseenuid, entry.upToDate]),
    [
      ["INBOX", 4, true],
      ["Receipts", 0, false],
      ["Work", 7, true],
    ],
  );
  const newMail = planFolders([folder("INBOX", "12", 6)], [cursor("INBOX", "12", 4)], folderSelection(undefined));
  assert.is(newMail.folders[0]?.upToDate, false);
  const failed = planFolders([folder("INBOX", "12", 5)], [cursor("INBOX", "12", 4, [3])], folderSelection(undefined));
  assert.is(failed.folders[0]?.upToDate, false, "a UID to retry");
  const changed = planFolders([folder("INBOX", "99", 5)], [cursor("INBOX", "12", 4)], folderSelection(undefined));
  assert.is(changed.folders[0]?.upToDate, false, "a new UIDVALIDITY");
  const open = planFolders([folder("INBOX", "12", 5)], [cursor("INBOX", "12", 4)], folderSelection(undefined), "INBOX");
  assert.is(open.folders[0]?.upToDate, false, "the folder open on the connection: its STATUS may be stale");
  const noStatus = planFolders([folder("INBOX", null, null)], [cursor("INBOX", "12", 4)], folderSelection(undefined));
  assert.is(noStatus.folders[0]?.upToDate, false, "a server without STATUS: the folder is opened");
  const flagsChanged = planFolders([folder("INBOX", "12", 5, null, "10")], [cursor("INBOX", "12", 4)], folderSelection(undefined));
  assert.is(flagsChanged.folders[0]?.upToDate, false, "a new HIGHESTMODSEQ: flags changed, or mail was expunged");
  const noModseq = planFolders([folder("INBOX", "12", 5, null, null)], [cursor("INBOX", "12", 4, [], null)], folderSelection(undefined));
  assert.is(noModseq.folders[0]?.upToDate, false, "no CONDSTORE: nothing says the flags did not change");
  assert.is(plan.folders[2]?.cursor.folder_id, "id-Projects", "the renamed folder keeps its id");
  assert.ok(/^[0-9a-f]{12}$/.test(plan.folders[1]?.cursor.folder_id ?? ""), "a new folder gets a new id");
});

test("a hostile list: at most MAX_FOLDERS folders, paths past the limit left out, the changes named a few at a time", () => {
  const many = Array.from({ length: MAX_FOLDERS * 4 }, (_, n) => folder(`F${n}`, String(n)));
  const long = folder(`${"x".repeat(MAX_FOLDER_PATH_BYTES)}y`);
  const plan = planFolders([folder("INBOX"), long, ...many], [], folderSelection(undefined));
  assert.is(plan.folders.length, MAX_FOLDERS);
  assert.is(plan.folders[0]?.cursor.path, "INBOX");
  assert.is(plan.changes.left_out, MAX_FOLDERS * 4 + 2 - MAX_FOLDERS);
  assert.is(plan.changes.added.length, 5);
  assert.is(plan.changes.more, MAX_FOLDERS - 5);
  // Two folders claiming one vanished folder's UIDVALIDITY: only one takes its cursor.
  const twice = planFolders([folder("A", "7"), folder("B", "7")], [cursor("Old", "7", 3)], folderSelection(undefined));
  assert.equal(twice.changes.renamed, [{ from: "Old", to: "A" }]);
  assert.equal(twice.changes.added, ["B"]);
});

test("a worker context saved before every folder was synced: its cursor becomes INBOX's, with an id that stays the same", () => {
  const saved = { identity_id: "i", mailbox: "INBOX", cursor: { uidvalidity: "5", lastseenuid: 9, failed_uids: [3] }, history: [] };
  const upgraded = upgradeImapContext(saved);
  const inbox = (upgraded.folders as FolderCursor[])[0];
  assert.equal({ ...upgraded, folders: [] }, { identity_id: "i", history: [], folders: [], pending_changes: [] });
  assert.equal({ ...inbox, folder_id: "" }, { uidvalidity: "5", lastseenuid: 9, failed_uids: [3], path: "INBOX", special_use: null, folder_id: "" });
  assert.is((upgradeImapContext(saved).folders as FolderCursor[])[0]?.folder_id, inbox?.folder_id, "the same id at every restore");
  const current = { identity_id: "i", folders: [cursor("INBOX", "5", 9)], pending_changes: [{ order: "store_flags", message_id: "m", since: "t" }] };
  assert.equal(upgradeImapContext(current), current, "a current context is left as it is");
});

test.run();
