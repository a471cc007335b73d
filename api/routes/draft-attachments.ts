// Files attached to a draft: uploaded as multipart/form-data (one file part), streamed into the store
// as it arrives (never held whole), refused once the draft's files would pass what a mail may carry;
// removed again. The draft lists each with its attachment_id; the SMTP bridge sends them with it.
import type { FastifyInstance } from "fastify";
import { attachedBytes, attachmentBudget, MAX_DRAFT_ATTACHMENTS, nextAttachmentId, uploadedAttachment } from "../../actors/messages/draft-attachments.ts";
import type { Message } from "../../actors/store/model.ts";
import { type ApiContext, userOf } from "../api-context.ts";
import { HttpError, notFound } from "../http-error.ts";
import { attachmentParams, messageParams } from "../schemas/messages.ts";
import { usersMessage } from "./messages.ts";

/** CALIOPEN_SMTP_MAX_SIZE's default: the mail a draft becomes. */
export const DEFAULT_MAX_MAIL_BYTES = 25 * 1024 * 1024;
/** What a multipart body holds besides its file (boundaries, part headers). */
const MULTIPART_OVERHEAD_BYTES = 64 * 1024;

const tags = ["messages"];

export function draftAttachmentRoutes(app: FastifyInstance, context: ApiContext): void {
  const { store } = context;
  const budget = attachmentBudget(context.maxMailBytes ?? DEFAULT_MAX_MAIL_BYTES);

  const draftOf = async (userId: string, messageId: string): Promise<Message> => {
    const message = await usersMessage(context, userId, messageId);
    if (!message.is_draft) throw new HttpError(409, "only a draft's attachments can be changed: this message was sent");
    return message;
  };

  app.post<{ Params: { message_id: string } }>(
    "/api/v2/messages/:message_id/attachments",
    {
      bodyLimit: budget + MULTIPART_OVERHEAD_BYTES,
      schema: {
        operationId: "UploadDraftAttachment",
        tags,
        summary: `Attach a file to a draft: multipart/form-data with one file part, streamed into the store; a draft's files total at most ${Math.floor(budget / 1024 / 1024)} MiB (what a mail of CALIOPEN_SMTP_MAX_SIZE carries once encoded)`,
        consumes: ["multipart/form-data"],
        params: messageParams,
        response: { 201: { $ref: "Message#" } },
      },
    },
    async (request, reply) => {
      const user = userOf(request);
      const draft = await draftOf(user.user_id, request.params.message_id);
      if (draft.attachments.length >= MAX_DRAFT_ATTACHMENTS) throw new HttpError(409, `a draft carries at most ${MAX_DRAFT_ATTACHMENTS} files`);
      const room = budget - attachedBytes(draft.attachments);
      if (!request.isMultipart()) throw new HttpError(415, "send the file as multipart/form-data");
      const part = await request.file({ limits: { files: 1, fields: 0, parts: 1, fileSize: Math.max(0, room), headerPairs: 20 }, throwFileSizeLimit: true });
      if (part === undefined) throw new HttpError(400, "the body has no file part", "file");
      let size = 0;
      const counted = async function* () {
        for await (const chunk of part.file as AsyncIterable<Buffer>) {
          size += chunk.length;
          yield chunk;
        }
        if (part.file.truncated) throw new HttpError(413, `the draft's files would pass ${budget} bytes`);
      };
      let rawId: string;
      try {
        rawId = (await store.raws.put(user.user_id, counted())).raw_msg_id;
      } catch (err) {
        if ((err as { code?: string }).code === "FST_REQ_FILE_TOO_LARGE") throw new HttpError(413, `the draft's files would pass ${budget} bytes`);
        throw err;
      }
      let refusal: HttpError | null = null;
      const updated = await store.messages.update(user.user_id, draft.message_id, (current) => {
        refusal = !current.is_draft
          ? new HttpError(409, "the draft was sent meanwhile")
          : current.attachments.length >= MAX_DRAFT_ATTACHMENTS || attachedBytes(current.attachments) + size > budget
            ? new HttpError(413, `the draft's files would pass ${budget} bytes`)
            : null;
        if (refusal !== null) return null;
        const attachment = uploadedAttachment(nextAttachmentId(current.attachments), { fileName: part.filename, contentType: part.mimetype, size, rawId });
        return { ...current, attachments: [...current.attachments, attachment] };
      });
      if (refusal !== null || updated === null) {
        await store.raws.remove(rawId);
        throw refusal ?? notFound(`message ${draft.message_id}`);
      }
      return reply.code(201).send(updated);
    },
  );

  app.delete<{ Params: { message_id: string; attachment_id: string } }>(
    "/api/v2/messages/:message_id/attachments/:attachment_id",
    {
      schema: {
        operationId: "DeleteDraftAttachment",
        tags,
        summary: "Remove a file from a draft",
        params: attachmentParams,
        response: { 200: { $ref: "Message#" } },
      },
    },
    async (request) => {
      const user = userOf(request);
      const { message_id, attachment_id } = request.params;
      await draftOf(user.user_id, message_id);
      let removed: string | undefined;
      const updated = await store.messages.update(user.user_id, message_id, (current) => {
        if (!current.is_draft) throw new HttpError(409, "the draft was sent meanwhile");
        const found = current.attachments.find((attachment) => attachment.attachment_id === attachment_id);
        if (found === undefined) throw notFound(`attachment ${attachment_id} of draft ${message_id}`);
        removed = found.content_raw_id;
        return { ...current, attachments: current.attachments.filter((attachment) => attachment !== found) };
      });
      if (updated === null) throw notFound(`message ${message_id}`);
      if (removed !== undefined) await store.raws.remove(removed);
      return updated;
    },
  );
}
