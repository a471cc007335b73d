// The servers of a remote account (`infos.inserver`, `infos.outserver`), as the API checks them: an
// address the destination policy refuses is a 400 at once (a name is checked when it is resolved, at
// every connect), and a new server needs the credentials again, so that a stolen token cannot send the
// stored password to a server of its choosing.

import { DestinationPolicy } from "../../actors/network/destination-policy.ts";
import { formatHostPort, normalizeHost, parseHostPort } from "../../actors/network/host-port.ts";
import type { Credentials, Identity, IdentityInfos } from "../../actors/store/model.ts";
import { badRequest } from "../http-error.ts";

const SERVER_FIELDS = ["inserver", "outserver"] as const;
/** For an API started without a node's policy: public addresses only. */
const PUBLIC_ONLY = new DestinationPolicy();

export function checkServerAddresses(destinations: DestinationPolicy = PUBLIC_ONLY, infos: Partial<IdentityInfos> | undefined): void {
  for (const field of SERVER_FIELDS) {
    const server = parseHostPort(infos?.[field]);
    if (server === null) continue;
    const refused = destinations.refusalWithoutDns(server.host, server.port);
    if (refused !== null) throw badRequest(`infos.${field}`, `infos.${field} ${formatHostPort(server)} is not an allowed destination: ${refused}`);
  }
}

export function checkServerChange(current: Identity, infos: Partial<IdentityInfos> | undefined, credentials: Credentials | undefined): void {
  if (credentials !== undefined) return;
  for (const field of SERVER_FIELDS) {
    const wanted = infos?.[field];
    if (wanted === undefined || sameServer(wanted, current.infos[field])) continue;
    throw badRequest(
      `infos.${field}`,
      `changing infos.${field} needs the account's credentials in the same request: the stored password is never sent to a new server`,
    );
  }
}

function sameServer(a: unknown, b: unknown): boolean {
  const left = parseHostPort(a);
  const right = parseHostPort(b);
  if (left === null || right === null) return a === b;
  return left.port === right.port && normalizeHost(left.host) === normalizeHost(right.host);
}
