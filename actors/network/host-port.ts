// A server as users and operators write it: `host:port`, an IPv6 address in brackets (`[::1]:143`).

export interface HostPort {
  /** Without brackets, as written otherwise. */
  host: string;
  port: number;
}

export function parseHostPort(value: unknown): HostPort | null {
  if (typeof value !== "string") return null;
  const match = /^\s*(\[[^\]\s]+\]|[^:\s[\]]+):(\d{1,5})\s*$/.exec(value);
  if (match === null) return null;
  const port = Number(match[2]);
  if (port < 1 || port > 65535) return null;
  return { host: (match[1] as string).replace(/^\[(.*)\]$/, "$1"), port };
}

/** A host name compared with another: case and a final dot do not matter. */
export function normalizeHost(host: string): string {
  return host
    .trim()
    .replace(/^\[(.*)\]$/, "$1")
    .replace(/\.$/, "")
    .toLowerCase();
}

export function formatHostPort({ host, port }: HostPort): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
