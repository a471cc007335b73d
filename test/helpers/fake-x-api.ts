// A local HTTP server speaking the X API v2 endpoints the Twitter bridge uses, for tests only (no real X
// endpoint is reachable from here): `GET /2/dm_events` (newest first, `meta.next_token` paging,
// `includes.users` for the `sender_id` expansion), `POST /2/dm_conversations/with/:id/messages`,
// `GET /2/users/by/username/:u`, `GET /2/users/me`, `GET /2/users/:id`. It checks the Authorization
// header: `Bearer <token>` (OAuth 2 user token) or `OAuth oauth_consumer_key=…` (OAuth 1.0a, HMAC-SHA1
// signature verified with the app's and the token's secrets); anything else is a 401. It answers 429
// with `x-rate-limit-reset` on demand.
import { createHmac } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeUser {
  id: string;
  username: string;
  name: string;
}

export interface FakeDmEvent {
  id: string;
  event_type: "MessageCreate";
  text: string;
  created_at: string;
  sender_id: string;
  dm_conversation_id: string;
  /** The other side of a one-to-one conversation (not returned by the API for MessageCreate events). */
  recipient_id: string;
}

export interface FakeRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  /** "bearer", "oauth1" or "none". */
  auth: string;
  /** The user the credentials belong to, null when refused. */
  user_id: string | null;
  status: number;
}

export interface FakeXApi {
  /** The base URL to give the client (`baseUrl`). */
  url: string;
  appKey: string;
  appSecret: string;
  addUser(username: string, name?: string, id?: string): FakeUser;
  /** Lets `bearer` (OAuth 2) or `oauth1` tokens act as this user. */
  grant(user: FakeUser, tokens: { bearer?: string; oauth1?: { token: string; secret: string } }): void;
  /** Makes the tokens of this user invalid (401 from now on). */
  revoke(user: FakeUser): void;
  /** A DM from one user to another, with the next id (or the one given). */
  dm(from: FakeUser, to: FakeUser, text: string, options?: { id?: string; created_at?: string }): FakeDmEvent;
  /** The next `count` requests (matching `path`, a prefix, when given) answer 429 until `resetAt`. */
  rateLimit(resetAt: Date, count?: number, path?: string): void;
  /** DMs sent through the API (POST), oldest first. */
  readonly sent: FakeDmEvent[];
  readonly requests: FakeRequest[];
  readonly events: FakeDmEvent[];
  close(): Promise<void>;
}

/** Ids above 2^53, as real X ids are: a client that compares them as numbers gets them wrong. */
const FIRST_USER_ID = 1_400_000_000_000_000_000n;
const FIRST_EVENT_ID = 1_790_000_000_000_000_000n;

export async function startFakeXApi(options: { appKey?: string; appSecret?: string } = {}): Promise<FakeXApi> {
  const appKey = options.appKey ?? "fake-app-key";
  const appSecret = options.appSecret ?? "fake-app-secret";
  const users = new Map<string, FakeUser>();
  const bearers = new Map<string, string>();
  const oauth1 = new Map<string, { secret: string; user_id: string }>();
  const events: FakeDmEvent[] = [];
  const sent: FakeDmEvent[] = [];
  const requests: FakeRequest[] = [];
  const limits: { resetAt: Date; remaining: number; path: string | undefined }[] = [];
  let nextUser = FIRST_USER_ID;
  let nextEvent = FIRST_EVENT_ID;
  const newUserId = () => {
    nextUser += 1n;
    return nextUser.toString();
  };

  const conversationOf = (a: string, b: string) => (BigInt(a) < BigInt(b) ? `${a}-${b}` : `${b}-${a}`);

  const dm = (from: FakeUser, to: FakeUser, text: string, extra: { id?: string; created_at?: string } = {}): FakeDmEvent => {
    let id = extra.id;
    if (id === undefined) {
      nextEvent += 1n + BigInt(Math.floor(Math.random() * 1000));
      id = nextEvent.toString();
    } else if (BigInt(id) > nextEvent) nextEvent = BigInt(id);
    const event: FakeDmEvent = {
      id,
      event_type: "MessageCreate",
      text,
      created_at: extra.created_at ?? new Date().toISOString(),
      sender_id: from.id,
      dm_conversation_id: conversationOf(from.id, to.id),
      recipient_id: to.id,
    };
    events.push(event);
    return event;
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: Error) => send(res, 500, { title: "Internal Error", detail: err.message }));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", `http://${req.headers.host ?? "localhost"}`);
    const query = Object.fromEntries(url.searchParams);
    const body = await readBody(req);
    const record: FakeRequest = { method: req.method ?? "GET", path: url.pathname, query, auth: "none", user_id: null, status: 0 };
    requests.push(record);
    const reply = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      record.status = status;
      send(res, status, payload, headers);
    };

    const limit = limits.find((entry) => entry.remaining > 0 && (entry.path === undefined || url.pathname.startsWith(entry.path)));
    if (limit !== undefined) {
      limit.remaining -= 1;
      return reply(
        429,
        { title: "Too Many Requests", detail: "Too Many Requests", type: "about:blank", status: 429 },
        {
          "x-rate-limit-limit": "15",
          "x-rate-limit-remaining": "0",
          "x-rate-limit-reset": String(Math.floor(limit.resetAt.getTime() / 1000)),
        },
      );
    }

    const who = authenticate(req, url);
    record.auth = who.auth;
    record.user_id = who.user?.id ?? null;
    if (who.user === null) return reply(401, { title: "Unauthorized", type: "about:blank", status: 401, detail: "Unauthorized" });
    const me = who.user;

    const path = url.pathname;
    if (req.method === "GET" && path === "/2/dm_events") return reply(200, listEvents(me, url.searchParams));
    if (req.method === "GET" && path === "/2/users/me") return reply(200, { data: me });
    let match = /^\/2\/users\/by\/username\/([^/]+)$/.exec(path);
    if (req.method === "GET" && match) {
      const wanted = decodeURIComponent(match[1] as string).toLowerCase();
      const user = [...users.values()].find((u) => u.username.toLowerCase() === wanted);
      if (user === undefined) return reply(200, notFound("username", wanted));
      return reply(200, { data: user });
    }
    match = /^\/2\/users\/(\d+)$/.exec(path);
    if (req.method === "GET" && match) {
      const user = users.get(match[1] as string);
      return reply(200, user === undefined ? notFound("id", match[1] as string) : { data: user });
    }
    match = /^\/2\/dm_conversations\/with\/(\d+)\/messages$/.exec(path);
    if (req.method === "POST" && match) {
      const to = users.get(match[1] as string);
      if (to === undefined) return reply(400, { title: "Invalid Request", detail: `participant ${match[1]} does not exist`, type: "about:blank", status: 400 });
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch {
        return reply(400, { title: "Invalid Request", detail: "the body is not JSON", status: 400 });
      }
      const text = (parsed as { text?: unknown }).text;
      if (typeof text !== "string" || text === "") return reply(400, { title: "Invalid Request", detail: "text is required", status: 400 });
      const event = dm(me, to, text);
      sent.push(event);
      return reply(201, { data: { dm_conversation_id: event.dm_conversation_id, dm_event_id: event.id } });
    }
    return reply(404, { title: "Not Found", detail: `no route ${req.method} ${path}`, status: 404 });
  }

  function listEvents(me: FakeUser, params: URLSearchParams): unknown {
    const max = Math.min(100, Math.max(1, Number(params.get("max_results") ?? 100) || 100));
    const offset = params.has("pagination_token") ? decodeToken(params.get("pagination_token") as string) : 0;
    const types = (params.get("event_types") ?? "MessageCreate,ParticipantsJoin,ParticipantsLeave").split(",");
    const fields = new Set(["id", "event_type", ...(params.get("dm_event.fields") ?? "").split(",").filter(Boolean)]);
    const mine = events
      .filter((event) => types.includes(event.event_type) && (event.sender_id === me.id || event.recipient_id === me.id))
      .sort((a, b) => (BigInt(b.id) > BigInt(a.id) ? 1 : BigInt(b.id) < BigInt(a.id) ? -1 : 0));
    const page = mine.slice(offset, offset + max);
    const data = page.map((event) => Object.fromEntries(Object.entries(event).filter(([field]) => fields.has(field) && field !== "recipient_id")));
    const expansions = (params.get("expansions") ?? "").split(",");
    const included = expansions.includes("sender_id") ? [...new Set(page.map((event) => event.sender_id))].map((id) => users.get(id)).filter(Boolean) : [];
    const next = offset + max < mine.length ? encodeToken(offset + max) : undefined;
    return {
      ...(data.length > 0 && { data }),
      ...(included.length > 0 && { includes: { users: included } }),
      meta: { result_count: data.length, ...(next !== undefined && { next_token: next }) },
    };
  }

  function authenticate(req: IncomingMessage, url: URL): { auth: string; user: FakeUser | null } {
    const header = req.headers.authorization ?? "";
    if (header.startsWith("Bearer ")) {
      const id = bearers.get(header.slice("Bearer ".length));
      return { auth: "bearer", user: id === undefined ? null : (users.get(id) ?? null) };
    }
    if (header.startsWith("OAuth ")) {
      const params = parseOAuthHeader(header);
      if (params.oauth_consumer_key !== appKey || params.oauth_signature_method !== "HMAC-SHA1") return { auth: "oauth1", user: null };
      const token = oauth1.get(params.oauth_token ?? "");
      if (token === undefined || !params.oauth_signature || !params.oauth_nonce || !params.oauth_timestamp) return { auth: "oauth1", user: null };
      const expected = oauthSignature(req.method ?? "GET", url, params, appSecret, token.secret);
      if (expected !== params.oauth_signature) return { auth: "oauth1", user: null };
      return { auth: "oauth1", user: users.get(token.user_id) ?? null };
    }
    return { auth: "none", user: null };
  }

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    appKey,
    appSecret,
    addUser(username, name = username, id) {
      const user = { id: id ?? newUserId(), username, name };
      users.set(user.id, user);
      return user;
    },
    grant(user, tokens) {
      if (tokens.bearer !== undefined) bearers.set(tokens.bearer, user.id);
      if (tokens.oauth1 !== undefined) oauth1.set(tokens.oauth1.token, { secret: tokens.oauth1.secret, user_id: user.id });
    },
    revoke(user) {
      for (const [token, id] of bearers) if (id === user.id) bearers.delete(token);
      for (const [token, entry] of oauth1) if (entry.user_id === user.id) oauth1.delete(token);
    },
    dm,
    rateLimit(resetAt, count = 1, path) {
      limits.push({ resetAt, remaining: count, path });
    },
    sent,
    requests,
    events,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function send(res: ServerResponse, status: number, payload: unknown, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(payload);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(body), ...headers });
  res.end(body);
}

function notFound(parameter: string, value: string): unknown {
  return {
    errors: [
      {
        value,
        detail: `Could not find user with ${parameter}: [${value}].`,
        title: "Not Found Error",
        resource_type: "user",
        parameter,
        resource_id: value,
        type: "https://api.twitter.com/2/problems/resource-not-found",
      },
    ],
  };
}

const encodeToken = (offset: number) => Buffer.from(`page:${offset}`).toString("base64url");
const decodeToken = (token: string) =>
  Number(
    Buffer.from(token, "base64url")
      .toString("utf8")
      .replace(/^page:/, ""),
  ) || 0;

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function parseOAuthHeader(header: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const match of header.slice("OAuth ".length).matchAll(/([\w]+)="([^"]*)"/g)) out[match[1] as string] = decodeURIComponent(match[2] as string);
  return out;
}

/** RFC 5849 §3.4: HMAC-SHA1 over METHOD&URL&sorted parameters (query and oauth_*, no JSON body). */
function oauthSignature(method: string, url: URL, oauth: Record<string, string>, consumerSecret: string, tokenSecret: string): string {
  const params: [string, string][] = [...url.searchParams.entries()];
  for (const [key, value] of Object.entries(oauth)) if (key.startsWith("oauth_") && key !== "oauth_signature") params.push([key, value]);
  const encoded = params
    .map(([key, value]) => [rfc3986(key), rfc3986(value)] as const)
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0));
  const base = [
    method.toUpperCase(),
    rfc3986(`${url.protocol}//${url.host}${url.pathname}`),
    rfc3986(encoded.map(([key, value]) => `${key}=${value}`).join("&")),
  ].join("&");
  return createHmac("sha1", `${rfc3986(consumerSecret)}&${rfc3986(tokenSecret)}`)
    .update(base)
    .digest("base64");
}

function rfc3986(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
