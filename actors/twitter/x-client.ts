// A small X (Twitter) API v2 client for what the Twitter bridge needs: the account's DM events newer than
// the last one seen, user look-ups, sending a DM. Built on twitter-api-v2, from an identity's stored
// credentials: OAuth 2 user token (`access_token`), or OAuth 1.0a user tokens (`token`, `secret`) signed
// with the app's consumer key and secret from configuration.
//
// twitter-api-v2 has no base-URL option (and its `cloneWithPrefix` is broken), so a plugin rewrites every
// request's URL onto `baseUrl` (tests point it at a local fake); a plain-HTTP base URL gets an http.Agent.
//
// Errors are typed: `RateLimited` (429, with the reset time), `InvalidCredentials` (401, or no usable
// credentials), `XApiError` for the rest, with the API's own message.
import { Agent as HttpAgent } from "node:http";
import { ApiPartialResponseError, ApiRequestError, ApiResponseError, type ITwitterApiClientPlugin, TwitterApi } from "twitter-api-v2";
import { secretFields } from "../oauth2/oauth2-credentials.ts";
import type { Credentials } from "../store/model.ts";
import { compareIds, isId, type XDmEvent, type XUser } from "./dm-raw.ts";

export type { XDmEvent, XUser } from "./dm-raw.ts";

export const DEFAULT_X_BASE_URL = "https://api.x.com";

export interface XClientConfig {
  /** Default https://api.x.com; tests point it at the fake. */
  baseUrl?: string;
  /** The app's consumer key and secret, for OAuth 1.0a user tokens. */
  appKey?: string;
  appSecret?: string;
  /** Per HTTP request (default 15 s). */
  timeoutMs?: number;
}

export class XApiError extends Error {
  override name = "XApiError";
  constructor(
    message: string,
    /** The HTTP status, null when no response came (network, timeout). */
    readonly status: number | null = null,
  ) {
    super(message);
  }
}

/** 429: wait until `resetAt` before the next call. */
export class RateLimited extends XApiError {
  override name = "RateLimited";
  constructor(
    readonly resetAt: Date,
    message = `rate limited by the X API until ${resetAt.toISOString()}`,
  ) {
    super(message, 429);
  }
}

/** 401, or credentials missing or incomplete: a user must give new ones. */
export class InvalidCredentials extends XApiError {
  override name = "InvalidCredentials";
  constructor(message: string, status: number | null = 401) {
    super(message, status);
  }
}

export const DM_EVENT_FIELDS = "id,text,created_at,sender_id,dm_conversation_id,participant_ids,attachments";

export interface DmEventsOptions {
  /** `max_results` per page (1…100, default 100). */
  pageSize?: number;
  /** Pages read at most in one call (a guard against an endless cursor; default 50). */
  maxPages?: number;
}

export interface DmEventsSince {
  /** Events newer than the last seen id, oldest first, each once. */
  events: XDmEvent[];
  /** The users the API returned with the events (`includes.users`), by id. */
  users: Map<string, XUser>;
  pages: number;
  /**
   * False when paging stopped (page limit) before reaching the last seen id: events between it and
   * the oldest one returned may be missing. Always true on a first sync (no last seen id) that read
   * every page.
   */
  complete: boolean;
}

export interface SentDm {
  dm_event_id: string;
  dm_conversation_id: string;
}

/** What to rate-limit on when X says 429 without a reset time: its windows are 15 minutes. */
const DEFAULT_RESET_MS = 15 * 60_000;
const DEFAULT_TIMEOUT_MS = 15_000;
const plainHttpAgent = new HttpAgent({ keepAlive: true });

export class XClient {
  private constructor(
    private readonly api: TwitterApi,
    private readonly timeoutMs: number,
  ) {}

  /**
   * A client for one account. Throws `InvalidCredentials` when the credentials hold neither an
   * `access_token` nor a `token`/`secret` pair, and `XApiError` when OAuth 1.0a tokens are given but no
   * app key/secret is configured.
   */
  static fromCredentials(credentials: Credentials | null, config: XClientConfig = {}): XClient {
    const base = new URL(config.baseUrl ?? DEFAULT_X_BASE_URL);
    const settings = {
      plugins: base.origin === DEFAULT_X_BASE_URL && base.pathname === "/" ? [] : [rebase(base)],
      ...(base.protocol === "http:" && { httpAgent: plainHttpAgent }),
      compression: false as const,
    };
    const timeoutMs = config.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const fields = secretFields(credentials);
    const accessToken = fields?.access_token;
    if (typeof accessToken === "string" && accessToken !== "") return new XClient(new TwitterApi(accessToken, settings), timeoutMs);
    const token = fields?.token;
    const secret = fields?.secret;
    if (typeof token === "string" && token !== "" && typeof secret === "string" && secret !== "") {
      if (!config.appKey || !config.appSecret) throw new XApiError("OAuth 1.0a credentials need the app's consumer key and secret, which are not configured");
      return new XClient(new TwitterApi({ appKey: config.appKey, appSecret: config.appSecret, accessToken: token, accessSecret: secret }, settings), timeoutMs);
    }
    throw new InvalidCredentials("no usable X credentials: an OAuth 2 access_token or OAuth 1.0a token and secret are needed", null);
  }

  /**
   * The account's DM events (`MessageCreate`) newer than `lastSeenId` (null: every event the API still
   * has), following `meta.next_token` from the newest page until an id ≤ lastSeenId shows up.
   */
  async dmEventsSince(lastSeenId: string | null, options: DmEventsOptions = {}): Promise<DmEventsSince> {
    if (lastSeenId !== null && !isId(lastSeenId)) throw new XApiError(`last seen id ${JSON.stringify(lastSeenId)} is not a decimal id`);
    const pageSize = Math.min(100, Math.max(1, options.pageSize ?? 100));
    const maxPages = Math.max(1, options.maxPages ?? 50);
    const byId = new Map<string, XDmEvent>();
    const users = new Map<string, XUser>();
    let token: string | undefined;
    let pages = 0;
    let reached = false;
    while (pages < maxPages) {
      const body = await this.call("list DM events", () =>
        this.api.v2.get(
          "dm_events",
          {
            "dm_event.fields": DM_EVENT_FIELDS,
            event_types: "MessageCreate",
            expansions: "sender_id,participant_ids",
            "user.fields": "id,name,username",
            max_results: pageSize,
            ...(token !== undefined && { pagination_token: token }),
          },
          { timeout: this.timeoutMs },
        ),
      );
      pages += 1;
      const page = asObject(body);
      for (const user of asArray(asObject(page.includes).users)) {
        const parsed = userOf(user);
        if (parsed !== null) users.set(parsed.id, parsed);
      }
      for (const raw of asArray(page.data)) {
        const event = asObject(raw) as XDmEvent;
        if (!isId(event.id)) throw new XApiError(`the X API returned a DM event without a valid id: ${JSON.stringify(raw).slice(0, 200)}`);
        if (lastSeenId !== null && compareIds(event.id, lastSeenId) <= 0) {
          reached = true;
          continue;
        }
        byId.set(event.id, event);
      }
      const next = asObject(page.meta).next_token;
      if (reached || typeof next !== "string" || next === "") {
        return { events: ascending(byId), users, pages, complete: true };
      }
      token = next;
    }
    return { events: ascending(byId), users, pages, complete: false };
  }

  async me(): Promise<XUser> {
    return this.user("look up the authenticated user", () => this.api.v2.get("users/me", { "user.fields": "id,name,username" }, { timeout: this.timeoutMs }));
  }

  async userByUsername(username: string): Promise<XUser> {
    const name = username.trim().replace(/^@/, "");
    if (!/^\w{1,50}$/.test(name)) throw new XApiError(`"${username}" is not an X screen name`);
    return this.user(`look up @${name}`, () =>
      this.api.v2.get(`users/by/username/${encodeURIComponent(name)}`, { "user.fields": "id,name,username" }, { timeout: this.timeoutMs }),
    );
  }

  async userById(id: string): Promise<XUser> {
    if (!isId(id)) throw new XApiError(`${JSON.stringify(id)} is not an X user id`);
    return this.user(`look up user ${id}`, () => this.api.v2.get(`users/${id}`, { "user.fields": "id,name,username" }, { timeout: this.timeoutMs }));
  }

  /** Sends a one-to-one DM. */
  async sendDm(participantId: string, text: string): Promise<SentDm> {
    if (!isId(participantId)) throw new XApiError(`${JSON.stringify(participantId)} is not an X user id`);
    const body = await this.call(`send a DM to user ${participantId}`, () =>
      this.api.v2.post(`dm_conversations/with/${participantId}/messages`, { text }, { timeout: this.timeoutMs, forceBodyMode: "json" }),
    );
    const data = asObject(asObject(body).data);
    if (!isId(data.dm_event_id))
      throw new XApiError(`the X API accepted the DM but returned no event id: ${apiMessage(body) ?? JSON.stringify(body).slice(0, 200)}`);
    return { dm_event_id: data.dm_event_id, dm_conversation_id: typeof data.dm_conversation_id === "string" ? data.dm_conversation_id : "" };
  }

  private async user(what: string, request: () => Promise<unknown>): Promise<XUser> {
    const body = await this.call(what, request);
    const user = userOf(asObject(body).data);
    // v2 answers an unknown user with 200 and an `errors` array.
    if (user === null) throw new XApiError(`cannot ${what}: ${apiMessage(body) ?? "no user in the answer"}`, 404);
    return user;
  }

  private async call(what: string, request: () => Promise<unknown>): Promise<unknown> {
    try {
      return await request();
    } catch (err) {
      throw typed(what, err);
    }
  }
}

/** Moves every request from https://api.x.com onto `base` (which may carry a path prefix). */
function rebase(base: URL): ITwitterApiClientPlugin {
  const prefix = `${base.origin}${base.pathname.replace(/\/+$/, "")}`;
  return {
    onBeforeRequestConfig({ params }) {
      const url = new URL(params.url.startsWith("http") ? params.url : `https://${params.url}`);
      params.url = `${prefix}${url.pathname}${url.search}`;
    },
  };
}

function typed(what: string, err: unknown): XApiError {
  if (err instanceof XApiError) return err;
  if (err instanceof ApiResponseError) {
    const detail = apiMessage(err.data) ?? err.message;
    if (err.code === 429) return new RateLimited(resetOf(err.headers["x-rate-limit-reset"]), `cannot ${what}: rate limited by the X API (${detail})`);
    if (err.code === 401) return new InvalidCredentials(`cannot ${what}: the X API refused the credentials (${detail})`);
    return new XApiError(`cannot ${what}: X API answered ${err.code}: ${detail}`, err.code);
  }
  if (err instanceof ApiRequestError) return new XApiError(`cannot ${what}: ${err.requestError?.message ?? err.message}`);
  if (err instanceof ApiPartialResponseError)
    return new XApiError(`cannot ${what}: incomplete answer from the X API (${err.responseError?.message ?? err.message})`, err.response?.statusCode ?? null);
  return new XApiError(`cannot ${what}: ${err instanceof Error ? err.message : String(err)}`);
}

/** `x-rate-limit-reset` is in epoch seconds. */
function resetOf(header: string | string[] | undefined): Date {
  const value = Number(Array.isArray(header) ? header[0] : header);
  if (Number.isFinite(value) && value > 0) return new Date(value * 1000);
  return new Date(Date.now() + DEFAULT_RESET_MS);
}

/** The readable part of an X error body: v2 problem (`detail`/`title`), v2 `errors[]`, or v1 `errors[].message`. */
function apiMessage(body: unknown): string | null {
  const data = asObject(body);
  if (typeof data.detail === "string" && data.detail !== "") return data.detail;
  const first = asObject(asArray(data.errors)[0]);
  for (const field of ["detail", "message", "title"]) if (typeof first[field] === "string" && first[field] !== "") return first[field] as string;
  if (typeof data.title === "string" && data.title !== "") return data.title;
  if (typeof data.error === "string" && data.error !== "") return data.error;
  return null;
}

function userOf(value: unknown): XUser | null {
  const user = asObject(value);
  if (!isId(user.id) || typeof user.username !== "string" || user.username === "") return null;
  return { id: user.id, username: user.username, name: typeof user.name === "string" ? user.name : "" };
}

function ascending(events: Map<string, XDmEvent>): XDmEvent[] {
  return [...events.values()].sort((a, b) => compareIds(a.id, b.id));
}

function asObject(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}
