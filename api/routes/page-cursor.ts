// A paged listing's answer, or a 400 naming `after` when the cursor given is not one a page made.
import { BadCursor } from "../../actors/store/paging.ts";
import { badRequest } from "../http-error.ts";

export async function pageOrBadCursor<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    if (err instanceof BadCursor) throw badRequest("after", err.message);
    throw err;
  }
}
