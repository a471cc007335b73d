// Who a request comes from. The token and its user are read from the store on every request, with no
// cache, so a revoked or expired token, or a disabled user, is refused by every node at once.
import type { User } from "../actors/store/model.ts";
import type { Store } from "../actors/store/store.ts";
import { tokenRefusal, usedSince } from "../actors/store/tokens.ts";
import { isDisabled } from "../actors/store/users.ts";
import { HttpError } from "./http-error.ts";

/** The user behind an `Authorization` header, and the token's id; HttpError 401 for a missing, unknown, revoked or expired token, 403 for a disabled user. */
export async function authenticate(store: Store, authorization: string | undefined, now = new Date()): Promise<{ user: User; tokenId: string }> {
  const match = /^Bearer\s+(\S+)$/i.exec(authorization ?? "");
  if (match === null) throw new HttpError(401, "missing bearer token: send 'Authorization: Bearer <token>' (caliopen users add NAME makes one)");
  const place = await store.tokens.locate(match[1] as string);
  if (place === null) throw new HttpError(401, "unknown token");
  const [token, user] = await Promise.all([store.tokens.read(place), store.users.get(place.user_id)]);
  if (token === null || user === null || token.user_id !== user.user_id) throw new HttpError(401, "unknown token");
  const refusal = tokenRefusal(token, now);
  if (refusal !== null) throw new HttpError(401, refusal);
  if (isDisabled(user)) throw new HttpError(403, `user ${user.name} is disabled: an operator must enable them again`);
  // Not awaited, failures ignored: when a token was last used is worth a write a minute, never a slower or failed request.
  if (!usedSince(token, now)) store.tokens.touch(token, now).catch(() => undefined);
  return { user, tokenId: token.token_id };
}
