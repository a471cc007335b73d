// The copies of a user's messages on their mail servers, by place: (identity, folder, UIDVALIDITY, UID) →
// the message and the flags the server last showed. What lets a sync carry a flag changed on the server,
// or a mail expunged there, to the stored message it is, and the IMAP worker carry a change made here to
// the server. One small KV entry per copy, beside the lookups; a folder's entries are read in one pass
// (only when the server lost some of its mail).
import type { KvDocuments } from "../../runtime/kv-documents.ts";

/** Where a copy is: `folder_id` names the folder whatever it is renamed to (see FolderCursor). */
export interface CopyPlace {
  identity_id: string;
  folder_id: string;
  uidvalidity: string;
  uid: number;
}

export interface ServerCopy {
  uid: number;
  message_id: string;
  /** The copy's flags as the server last showed them (or as this side last set them). */
  flags: string[];
}

const PREFIX = "imapuid";

export class ServerCopies {
  constructor(private readonly docs: KvDocuments<ServerCopy>) {}

  async get(place: CopyPlace): Promise<ServerCopy | null> {
    return (await this.docs.get(keyOf(place)))?.value ?? null;
  }

  async record(place: CopyPlace, messageId: string, flags: string[]): Promise<void> {
    await this.docs.put(keyOf(place), { uid: place.uid, message_id: messageId, flags });
  }

  async forget(place: CopyPlace): Promise<void> {
    await this.docs.delete(keyOf(place));
  }

  /** Every copy known in one folder (as of one UIDVALIDITY), read in one pass. */
  async inFolder(identityId: string, folderId: string, uidvalidity: string): Promise<ServerCopy[]> {
    return this.docs.values(`${PREFIX}.${identityId}.${folderId}.${uidvalidity}.*`);
  }
}

function keyOf(place: CopyPlace): string {
  return `${PREFIX}.${place.identity_id}.${place.folder_id}.${place.uidvalidity}.${place.uid}`;
}
