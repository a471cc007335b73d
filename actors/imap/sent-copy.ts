// Files the copy of a sent message in the account's Sent mailbox (docs/decisions.md §2): the mailbox with
// the \Sent special-use attribute, else the first whose name contains "Sent"; APPENDed as \Seen.
import type { ImapFlow } from "imapflow";

export async function findSentMailbox(client: ImapFlow): Promise<string | null> {
  const mailboxes = await client.list();
  const bySpecialUse = mailboxes.find((mailbox) => mailbox.specialUse === "\\Sent" || [...(mailbox.flags ?? [])].includes("\\Sent"));
  if (bySpecialUse !== undefined) return bySpecialUse.path;
  return mailboxes.find((mailbox) => /sent/i.test(mailbox.name))?.path ?? null;
}

export async function appendSentCopy(client: ImapFlow, raw: Buffer, date: Date): Promise<string> {
  const mailbox = await findSentMailbox(client);
  if (mailbox === null) throw new Error("the account has no Sent mailbox (no \\Sent attribute, no name containing Sent)");
  const appended = await client.append(mailbox, raw, ["\\Seen"], date);
  if (appended === false) throw new Error(`the server refused to APPEND to ${mailbox}`);
  return mailbox;
}
