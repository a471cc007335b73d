// One attachment of a stored mail, decoded as the raw streams through the parser: the attachments
// before it are read and let go, its content is handed out as a stream the caller reads at its own
// pace (the parser waits for it), and the rest of the mail is never read. Nothing is held whole.
import { PassThrough, type Readable, type Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { AttachmentStream, Headers, MessageText } from "mailparser";
import type { AttachmentInfo } from "../store/model.ts";
import { isPgpControlPart, newMailParser } from "./parse-mail-stream.ts";

export interface OpenedAttachment {
  /** As the mail gives it: check it before it becomes a response header. */
  contentType: string;
  fileName: string | null;
  /** The decoded bytes. Destroy it to stop reading the mail. */
  content: Readable;
}

/** The ids of a message's attachments, filled in from their positions for documents stored before ids existed. */
export function attachmentIds<T extends { attachments: AttachmentInfo[] }>(message: T): T {
  if (message.attachments.every((attachment) => attachment.attachment_id !== undefined)) return message;
  return { ...message, attachments: message.attachments.map((attachment, i) => ({ attachment_id: String(i), ...attachment })) };
}

/**
 * The attachment numbered `id` (parse-mail-stream.ts numbers them) of the mail `source`, or null when
 * the mail has no such attachment. Rejects when the mail cannot be parsed.
 */
export function openAttachment(source: Readable, id: number): Promise<OpenedAttachment | null> {
  const parser = newMailParser();
  const abort = new AbortController();
  let root: Headers | null = null;
  parser.once("headers", (headers: Headers) => (root = headers));
  return new Promise<OpenedAttachment | null>((resolve, reject) => {
    let found = false;
    pipeline(
      source,
      // Its typings narrow read() to its objects, which the generic Transform signature does not allow.
      parser as unknown as Transform,
      async (items: AsyncIterable<AttachmentStream | MessageText>) => {
        let seen = 0;
        for await (const item of items) {
          if (item.type === "text" || isPgpControlPart(root, item)) {
            if (item.type !== "text") await drain(item);
            continue;
          }
          if (seen++ !== id) {
            await drain(item);
            continue;
          }
          found = true;
          const content = new PassThrough();
          resolve({ contentType: item.contentType, fileName: item.filename ?? null, content });
          try {
            await pipeline(item.content, content);
          } finally {
            item.release?.();
          }
          // Nothing after it is needed.
          abort.abort();
          return;
        }
      },
      { signal: abort.signal },
    ).then(
      () => resolve(null),
      (err: unknown) => (found ? undefined : reject(err)),
    );
  });
}

async function drain(item: AttachmentStream): Promise<void> {
  for await (const _chunk of item.content as AsyncIterable<Buffer>) {
    // read and let go
  }
  item.release?.();
}

/** A media type as a mail or a client may give one (`type/subtype`, no parameters); anything else is bytes. */
const MEDIA_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}\/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$/i;

export function mediaTypeOrBytes(value: string): string {
  return MEDIA_TYPE.test(value) ? value.toLowerCase() : "application/octet-stream";
}
