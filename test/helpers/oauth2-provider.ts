// A local OAuth 2.0 authorization server, for tests only (Google's and Microsoft's cannot be reached from
// here). It speaks the endpoints a mail platform meets: the consent page (RFC 6749 §4.1.1, PKCE S256 as
// RFC 7636 has it: it answers at once with a redirect carrying a code, or `access_denied`, as the test
// decides who consents), the token endpoint's refresh and authorization code grants (§6, §4.1.3, client
// authentication in the body or HTTP Basic, errors as §5.2's JSON) and token introspection (RFC 7662,
// `token=` in a POST form), which the test Dovecot's oauth2 passdb asks before it lets an XOAUTH2 login in. Tokens expire, refresh tokens may rotate (each use revokes the one used), and either
// kind can be revoked; requests are counted so that tests see how many refreshes a run made.
import { createHash, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface IssuedGrant {
  access_token: string;
  refresh_token: string;
  /** RFC 3339, as an identity's `credentials.oauth2.expires_at`. */
  expires_at: string;
}

/** What the next token request gets instead of an honest answer. */
export type TokenMisbehaviour =
  | { kind: "status"; status: number; body: string }
  | { kind: "huge"; bytes: number }
  | { kind: "silent" }
  | { kind: "delay"; ms: number };

export interface FakeOAuth2Provider {
  /** The token endpoint, for the provider's `token_url`. */
  tokenUrl: string;
  /** The consent page, for the provider's `authorization_url`. */
  authorizationUrl: string;
  /** Its entry in a CALIOPEN_OAUTH2_PROVIDERS file (`redirectUri`: with its consent page too). */
  providerEntry(redirectUri?: string): Record<string, string>;
  /** Who consents at the consent page from now on (null: the user refuses: `access_denied`). */
  consentAs(username: string | null): void;
  /** The consent page's last query (what the platform asked for). */
  readonly lastAuthorization: URLSearchParams | null;
  /** Authorization codes redeemed for tokens. */
  readonly codesRedeemed: number;
  /** The introspection endpoint, for Dovecot's `introspection_url`. */
  introspectionUrl: string;
  clientId: string;
  clientSecret: string;
  /** Tokens for `username`, the access token valid `expiresInS` seconds (negative: already expired). */
  grant(username: string, options?: { expiresInS?: number }): IssuedGrant;
  revokeAccess(accessToken: string): void;
  revokeRefresh(refreshToken: string): void;
  /** Makes the next `count` token requests misbehave. */
  misbehave(how: TokenMisbehaviour, count?: number): void;
  /** Refresh grants answered with new tokens. */
  readonly refreshes: number;
  /** Token requests refused (unknown or revoked refresh token, wrong client). */
  readonly refusals: number;
  readonly introspections: number;
  close(): Promise<void>;
}

interface AccessRecord {
  username: string;
  expiresAt: number;
  revoked: boolean;
}

export async function startFakeOAuth2Provider(options: { rotateRefreshTokens?: boolean; accessLifetimeS?: number } = {}): Promise<FakeOAuth2Provider> {
  const clientId = "caliopen-test-client";
  const clientSecret = `client-secret-${randomBytes(8).toString("hex")}`;
  const lifetimeS = options.accessLifetimeS ?? 3600;
  const access = new Map<string, AccessRecord>();
  const refresh = new Map<string, { username: string; revoked: boolean }>();
  const misbehaviours: TokenMisbehaviour[] = [];
  const counts = { refreshes: 0, refusals: 0, introspections: 0, codesRedeemed: 0 };
  let consenting: string | null = null;
  let lastAuthorization: URLSearchParams | null = null;
  /** Codes handed out, with what their redemption must match; each is good once. */
  const codes = new Map<string, { username: string; redirectUri: string; challenge: string }>();
  const sockets = new Set<import("node:net").Socket>();

  const token = (prefix: string) => `${prefix}-${randomBytes(18).toString("base64url")}`;
  const issueAccess = (username: string, expiresInS: number) => {
    const accessToken = token("at");
    access.set(accessToken, { username, expiresAt: Date.now() + expiresInS * 1000, revoked: false });
    return accessToken;
  };
  const issueRefresh = (username: string) => {
    const refreshToken = token("rt");
    refresh.set(refreshToken, { username, revoked: false });
    return refreshToken;
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: Error) => sendJson(res, 500, { error: "server_error", error_description: err.message }));
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost");
    const path = url.pathname;
    if (req.method === "GET" && path === "/authorize") return consentPage(url.searchParams, res);
    const form = new URLSearchParams(await readBody(req));
    if (req.method === "POST" && path === "/token") return tokenEndpoint(req, res, form);
    if (req.method === "POST" && path === "/introspect") {
      counts.introspections += 1;
      const record = access.get(form.get("token") ?? "");
      const active = record !== undefined && !record.revoked && record.expiresAt > Date.now();
      return sendJson(res, 200, active ? { active: true, username: record.username, exp: Math.floor(record.expiresAt / 1000) } : { active: false });
    }
    sendJson(res, 404, { error: "not_found" });
  }

  /** RFC 6749 §4.1.1-2: a redirect to the registered redirect_uri with a code (or an error) and the state. */
  function consentPage(query: URLSearchParams, res: ServerResponse): void {
    lastAuthorization = query;
    const redirectUri = query.get("redirect_uri") ?? "";
    const challenge = query.get("code_challenge") ?? "";
    if (query.get("client_id") !== clientId || !/^https?:\/\//.test(redirectUri)) {
      sendJson(res, 400, { error: "invalid_request" });
      return;
    }
    const back = new URL(redirectUri);
    back.searchParams.set("state", query.get("state") ?? "");
    if (query.get("response_type") !== "code" || query.get("code_challenge_method") !== "S256" || !/^[A-Za-z0-9_-]{43}$/.test(challenge)) {
      back.searchParams.set("error", "invalid_request");
    } else if (consenting === null) {
      back.searchParams.set("error", "access_denied");
    } else {
      const code = token("code");
      codes.set(code, { username: consenting, redirectUri, challenge });
      back.searchParams.set("code", code);
    }
    res.writeHead(302, { location: back.href, "cache-control": "no-store" });
    res.end();
  }

  /** RFC 6749 §4.1.3: the code, for the redirect_uri it was given to, proven by the PKCE verifier. */
  function redeemCode(res: ServerResponse, form: URLSearchParams): void {
    const code = form.get("code") ?? "";
    const issued = codes.get(code);
    codes.delete(code);
    const verifier = form.get("code_verifier") ?? "";
    if (
      issued === undefined ||
      issued.redirectUri !== form.get("redirect_uri") ||
      createHash("sha256").update(verifier).digest("base64url") !== issued.challenge
    ) {
      counts.refusals += 1;
      sendJson(res, 400, { error: "invalid_grant", error_description: "the code is invalid, used, or not this client's" });
      return;
    }
    counts.codesRedeemed += 1;
    sendJson(res, 200, {
      access_token: issueAccess(issued.username, lifetimeS),
      refresh_token: issueRefresh(issued.username),
      token_type: "Bearer",
      expires_in: lifetimeS,
    });
  }

  async function tokenEndpoint(req: IncomingMessage, res: ServerResponse, form: URLSearchParams): Promise<void> {
    const trouble = misbehaviours.shift();
    if (trouble?.kind === "silent") return; // never answers: the client's timeout must end it
    if (trouble?.kind === "huge") {
      res.writeHead(200, { "content-type": "application/json" });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      for (let sent = 0; sent < trouble.bytes && !res.destroyed; sent += chunk.length) {
        if (!res.write(chunk)) await drainedOrClosed(res);
      }
      res.end();
      return;
    }
    if (trouble?.kind === "status") {
      res.writeHead(trouble.status, { "content-type": "application/json" });
      res.end(trouble.body);
      return;
    }
    if (trouble?.kind === "delay") await new Promise((resolve) => setTimeout(resolve, trouble.ms));

    const [id, secret] = clientOf(req, form);
    if (id !== clientId || secret !== clientSecret) {
      counts.refusals += 1;
      return sendJson(res, 401, { error: "invalid_client", error_description: "client authentication failed" });
    }
    if (form.get("grant_type") === "authorization_code") return redeemCode(res, form);
    if (form.get("grant_type") !== "refresh_token") return sendJson(res, 400, { error: "unsupported_grant_type" });
    const used = form.get("refresh_token") ?? "";
    const record = refresh.get(used);
    if (record === undefined || record.revoked) {
      counts.refusals += 1;
      return sendJson(res, 400, { error: "invalid_grant", error_description: "the refresh token is invalid, expired or revoked" });
    }
    counts.refreshes += 1;
    const answer: Record<string, unknown> = { access_token: issueAccess(record.username, lifetimeS), token_type: "Bearer", expires_in: lifetimeS };
    if (options.rotateRefreshTokens === true) {
      record.revoked = true;
      answer.refresh_token = issueRefresh(record.username);
    }
    sendJson(res, 200, answer);
  }

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    tokenUrl: `${base}/token`,
    authorizationUrl: `${base}/authorize`,
    providerEntry(redirectUri) {
      const entry = { token_url: `${base}/token`, client_id: clientId, client_secret: clientSecret };
      return redirectUri === undefined ? entry : { ...entry, authorization_url: `${base}/authorize`, redirect_uri: redirectUri };
    },
    consentAs(username) {
      consenting = username;
    },
    get lastAuthorization() {
      return lastAuthorization;
    },
    get codesRedeemed() {
      return counts.codesRedeemed;
    },
    introspectionUrl: `${base}/introspect`,
    clientId,
    clientSecret,
    grant(username, grantOptions = {}) {
      const expiresInS = grantOptions.expiresInS ?? lifetimeS;
      const accessToken = issueAccess(username, expiresInS);
      return { access_token: accessToken, refresh_token: issueRefresh(username), expires_at: new Date(Date.now() + expiresInS * 1000).toISOString() };
    },
    revokeAccess(accessToken) {
      const record = access.get(accessToken);
      if (record !== undefined) record.revoked = true;
    },
    revokeRefresh(refreshToken) {
      const record = refresh.get(refreshToken);
      if (record !== undefined) record.revoked = true;
    },
    misbehave(how, count = 1) {
      for (let n = 0; n < count; n++) misbehaviours.push(how);
    },
    get refreshes() {
      return counts.refreshes;
    },
    get refusals() {
      return counts.refusals;
    },
    get introspections() {
      return counts.introspections;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The client's id and secret: HTTP Basic (RFC 6749 §2.3.1, form-encoded then base64) or the body's fields. */
function clientOf(req: IncomingMessage, form: URLSearchParams): [string | null, string | null] {
  const header = req.headers.authorization ?? "";
  if (header.startsWith("Basic ")) {
    const decoded = Buffer.from(header.slice(6), "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) return [null, null];
    return [decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, " ")), decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, " "))];
  }
  return [form.get("client_id"), form.get("client_secret")];
}

function drainedOrClosed(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
  res.end(JSON.stringify(body));
}
