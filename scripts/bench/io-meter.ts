// Bytes and read/write system calls of a process, from /proc/<pid>/io (Linux). For a process whose only
// I/O is its NATS sockets, that is its traffic as the kernel sees it: with TLS, records included
// (header, tag, padding), so TLS minus plain is the record overhead; calls per message show how
// many messages each write or read carries.
import { readFileSync } from "node:fs";

export interface IoCounters {
  /** Bytes read plus bytes written. */
  bytes: number;
  /** read-like plus write-like system calls. */
  syscalls: number;
}

/** NaN fields when the file cannot be read (another user's process, or not Linux). */
function readIo(pid: number | "self"): IoCounters {
  try {
    const fields = new Map(
      readFileSync(`/proc/${pid}/io`, "utf8")
        .split("\n")
        .map((line) => line.split(":").map((part) => part.trim()) as [string, string]),
    );
    const field = (name: string) => Number(fields.get(name) ?? Number.NaN);
    return { bytes: field("rchar") + field("wchar"), syscalls: field("syscr") + field("syscw") };
  } catch {
    return { bytes: Number.NaN, syscalls: Number.NaN };
  }
}

/** The I/O of `pid` between the call and the returned function's call. */
export function startIoMeter(pid: number | "self"): () => IoCounters {
  const before = readIo(pid);
  return () => {
    const after = readIo(pid);
    return { bytes: after.bytes - before.bytes, syscalls: after.syscalls - before.syscalls };
  };
}

/** Counters divided by a number of messages. */
export function perMessage(io: IoCounters, messages: number): IoCounters {
  return { bytes: io.bytes / messages, syscalls: io.syscalls / messages };
}
