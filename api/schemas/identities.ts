// JSON schemas of identities (the user's mail and Twitter accounts): what creating or patching one
// takes, credentials and OAuth 2.0 grants included, and the Identity the API returns.

import { MAX_SCHEDULE_CHARS } from "../../actors/identities/poll-schedule.ts";
import { MAX_FOLDER_PATH_BYTES, MAX_SELECTION_ENTRIES } from "../../actors/imap/account-folders.ts";
import { PROVIDER_NAME } from "../../actors/oauth2/oauth2-providers.ts";
import { MAX_TOKEN_CHARS } from "../../actors/oauth2/token-endpoint.ts";
import { decimalMinutes, hostPort, text } from "./common.ts";

const oauthToken = { type: "string", minLength: 1, maxLength: MAX_TOKEN_CHARS, pattern: "^[\\x21-\\x7e]+$" } as const;

const oauth2Grant = {
  type: "object",
  description: "an OAuth 2.0 grant for a mail account (XOAUTH2 on IMAP and SMTP), refreshed by the platform before it expires",
  additionalProperties: false,
  required: ["provider", "access_token", "refresh_token"],
  properties: {
    provider: { type: "string", pattern: PROVIDER_NAME.source, description: "one of the operator's providers (CALIOPEN_OAUTH2_PROVIDERS)" },
    access_token: oauthToken,
    refresh_token: oauthToken,
    expires_at: {
      type: ["string", "null"],
      pattern: "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?(Z|[+-]\\d{2}:\\d{2})$",
      description: "when the access token expires (RFC 3339); null or absent: refreshed only when a server refuses it",
    },
  },
} as const;

const credentials = {
  type: "object",
  description:
    "secrets to log in with: username/password for mail, or `oauth2` (and optionally `username`, the address by default); OAuth tokens for Twitter. Stored encrypted, never returned. An account created without them waits (needsCredentials) until they are given, or granted through its provider's consent page (AuthorizeUserIdentity)",
  minProperties: 1,
  maxProperties: 16,
  properties: { oauth2: oauth2Grant },
  additionalProperties: { type: "string", maxLength: 4096 },
} as const;

const folderEntry = { type: "string", minLength: 1, maxLength: MAX_FOLDER_PATH_BYTES } as const;

const identityInfosInput = {
  type: "object",
  additionalProperties: false,
  properties: {
    inserver: hostPort,
    outserver: hostPort,
    poll_interval: decimalMinutes,
    poll_schedule: {
      type: ["string", "null"],
      maxLength: MAX_SCHEDULE_CHARS,
      description:
        "when to poll instead of every poll_interval: a cron pattern in UTC (`*/15 7-20 * * 1-5`: every 15 minutes from 7:00 to 20:45 on weekdays; 6 fields: seconds first); null or empty: every poll_interval",
    },
    mailboxes: {
      type: ["object", "null"],
      additionalProperties: false,
      description:
        "which IMAP folders are synced besides INBOX (always synced): `include` (absent or null: every folder) and `exclude`, each entry a folder path (its subfolders too) or a special-use attribute such as `\\Sent`; null or `{}`: every folder but `\\Trash`, `\\Junk` and `\\All`",
      properties: {
        include: { type: ["array", "null"], maxItems: MAX_SELECTION_ENTRIES, items: folderEntry },
        exclude: { type: "array", maxItems: MAX_SELECTION_ENTRIES, items: folderEntry },
      },
    },
  },
} as const;

export const identitySchema = {
  $id: "Identity",
  type: "object",
  additionalProperties: true,
  properties: {
    identity_id: { type: "string" },
    user_id: { type: "string" },
    type: { type: "string", enum: ["local", "remote"] },
    protocol: { type: "string" },
    identifier: { type: "string" },
    display_name: { type: "string" },
    status: { type: "string" },
    has_credentials: { type: "boolean" },
    infos: {
      type: "object",
      description: "servers, poll interval, and sync status: last_poll, next_poll, last_sync, last_error",
      additionalProperties: true,
    },
    date_insert: { type: "string" },
    date_update: { type: "string" },
  },
} as const;

export const createIdentityBody = {
  type: "object",
  additionalProperties: false,
  required: ["protocol", "identifier"],
  properties: {
    protocol: { type: "string", enum: ["email", "imap", "twitter"] },
    identifier: { type: "string", minLength: 1, maxLength: 320 },
    display_name: text(200),
    status: { type: "string", enum: ["active", "inactive"] },
    credentials,
    infos: identityInfosInput,
  },
} as const;

export const patchIdentityBody = {
  type: "object",
  additionalProperties: false,
  minProperties: 1,
  properties: { display_name: text(200), status: { type: "string", enum: ["active", "inactive"] }, credentials, infos: identityInfosInput },
} as const;
