// What a message is made of, streamed: its raw (the mail as received) and each of its attachments,
// decoded from that raw on the way out. A message is only ever found among the asking user's own.
import type { Readable } from "node:stream";
import contentDisposition from "content-disposition";
import type { FastifyInstance, FastifyReply } from "fastify";
import { mediaTypeOrBytes, openAttachment } from "../../actors/mail/mail-attachment.ts";
import type { Message } from "../../actors/store/model.ts";
import { type ApiContext, userOf } from "../api-context.ts";
import { notFound } from "../http-error.ts";
import { attachmentParams, messageParams } from "../schemas/messages.ts";
import { usersMessage } from "./messages.ts";

const tags = ["messages"];
const binary = (contentType: string, description: string) => ({ description, content: { [contentType]: { schema: { type: "string", format: "binary" } } } });

export function messageContentRoutes(app: FastifyInstance, context: ApiContext): void {
  const { store } = context;

  const rawOf = async (message: Message): Promise<Readable> => {
    const raw = message.raw_msg_id === null ? null : await store.raws.readable(message.raw_msg_id);
    if (raw === null) throw notFound(`the raw of message ${message.message_id}`);
    return raw;
  };
  const messageOf = (userId: string, messageId: string) => usersMessage(context, userId, messageId);

  app.get<{ Params: { message_id: string } }>(
    "/api/v2/messages/:message_id/raw",
    {
      schema: {
        operationId: "GetMessageRaw",
        tags,
        summary: "The message as received (message/rfc822), streamed; drafts have none",
        params: messageParams,
        response: { 200: binary("message/rfc822", "the raw mail") },
      },
    },
    async (request, reply) => {
      const message = await messageOf(userOf(request).user_id, request.params.message_id);
      const raw = await rawOf(message);
      return download(reply, "message/rfc822", `${message.message_id}.eml`).send(raw);
    },
  );

  app.get<{ Params: { message_id: string; attachment_id: string } }>(
    "/api/v2/messages/:message_id/attachments/:attachment_id",
    {
      schema: {
        operationId: "GetMessageAttachment",
        tags,
        summary: "One attachment of a message, decoded from its raw (or a file uploaded to a draft) and streamed, with its content type and file name",
        params: attachmentParams,
        response: { 200: binary("application/octet-stream", "the attachment's content (its own content type)") },
      },
    },
    async (request, reply) => {
      const { message_id, attachment_id } = request.params;
      const message = await messageOf(userOf(request).user_id, message_id);
      // A file uploaded to a draft is stored by itself, and stays so once the draft is sent.
      const uploaded = message.attachments.find((attachment) => attachment.attachment_id === attachment_id && attachment.content_raw_id !== undefined);
      if (uploaded?.content_raw_id !== undefined) {
        const content = await store.raws.readable(uploaded.content_raw_id);
        if (content === null) throw notFound(`attachment ${attachment_id} of message ${message_id}`);
        return download(reply, uploaded.content_type, uploaded.file_name).send(content);
      }
      if (message.is_draft) throw notFound(`attachment ${attachment_id} of draft ${message_id}`);
      const raw = await rawOf(message);
      const attachment = await openAttachment(raw, Number(attachment_id));
      if (attachment === null) {
        raw.destroy();
        throw notFound(`attachment ${attachment_id} of message ${message_id}`);
      }
      const type = mediaTypeOrBytes(attachment.contentType);
      const named = attachment.fileName?.trim() ? attachment.fileName : `attachment-${attachment_id}`;
      return download(reply, type, named).send(attachment.content);
    },
  );
}

/**
 * Always a download, never a page of the API's origin: what a mail carries (HTML, SVG, scripts) must not
 * run as the API's own content.
 */
function download(reply: FastifyReply, type: string, fileName: string): FastifyReply {
  // A name as a mail gives it: no control characters; an ASCII fallback for old clients, UTF-8 for the others.
  const name = [...fileName].filter((char) => char >= " " && char !== "\u007f").join("");
  return reply
    .type(type)
    .header("content-disposition", contentDisposition(name, { fallback: name.replace(/[^\u0020-\u007e]/g, "?") }))
    .header("x-content-type-options", "nosniff")
    .header("content-security-policy", "sandbox; default-src 'none'")
    .header("cache-control", "private, no-store");
}
