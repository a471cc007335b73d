// CPU time spent by this process and by another one (the nats-server), to tell which side of a
// comparison is saturated. Linux only: another process's time comes from /proc/<pid>/stat.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

let ticksPerSecond: number | null = null;

function clockTicks(): number {
  if (ticksPerSecond === null) {
    try {
      ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** User + system CPU time of `pid` in ms (10 ms resolution), or NaN when it cannot be read. */
export function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name, which may contain spaces: state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks();
  } catch {
    return Number.NaN;
  }
}

function readTicks(path: string, pick: (fields: string[]) => number): number {
  try {
    return pick(readFileSync(path, "utf8").split("\n")[0]?.trim().split(/\s+/) ?? []);
  } catch {
    return Number.NaN;
  }
}

/** Busy CPU ticks of the whole machine: user, nice, system, irq, softirq. */
function machineBusyTicks(): number {
  return readTicks("/proc/stat", (f) => [1, 2, 3, 6, 7].reduce((sum, i) => sum + Number(f[i]), 0));
}

/** This process's ticks plus those of its finished (waited-for) children and their descendants. */
function ownTicks(): number {
  return readTicks("/proc/self/stat", (f) => {
    const fields = f.join(" ");
    const rest = fields.slice(fields.lastIndexOf(")") + 2).split(" ");
    return [11, 12, 13, 14].reduce((sum, i) => sum + Number(rest[i]), 0);
  });
}

/**
 * How many cores other processes on the machine kept busy, on average, between the call and the
 * returned function's call (by then every child of ours must have exited). Benchmarks on a shared
 * machine are only as good as this is small.
 */
export function startBackgroundMeter(): () => number {
  const started = performance.now();
  const busy = machineBusyTicks();
  const own = ownTicks();
  return () => {
    const seconds = (performance.now() - started) / 1000;
    const others = machineBusyTicks() - busy - (ownTicks() - own);
    return others / clockTicks() / seconds;
  };
}

/** CPU ms used by this process and by `otherPid` between start() and the returned stop(). */
export function startCpuMeter(otherPid: number | null): () => { selfMs: number; otherMs: number } {
  const self = process.cpuUsage();
  const other = otherPid === null ? Number.NaN : processCpuMs(otherPid);
  return () => {
    const used = process.cpuUsage(self);
    return { selfMs: (used.user + used.system) / 1000, otherMs: otherPid === null ? Number.NaN : processCpuMs(otherPid) - other };
  };
}

/** utime, stime, cutime, cstime and ppid of a process, in ms (null when it is gone). */
function statTimes(pid: number | "self"): { own: number; reaped: number; ppid: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ms = (index: number) => (Number(rest[index]) * 1000) / clockTicks();
    return { own: ms(11) + ms(12), reaped: ms(13) + ms(14), ppid: Number(rest[1]) };
  } catch {
    return null;
  }
}

/**
 * CPU ms of a server that forks (Dovecot): the process, the children it has reaped, and every live
 * descendant (with the children they reaped). NaN when the process cannot be read.
 */
export function processTreeCpuMs(pid: number): number {
  const root = statTimes(pid);
  if (root === null) return Number.NaN;
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const times = statTimes(Number(entry));
    if (times === null) continue;
    children.set(times.ppid, [...(children.get(times.ppid) ?? []), Number(entry)]);
  }
  let total = 0;
  const walk = (at: number) => {
    const times = statTimes(at);
    if (times !== null) total += times.own + times.reaped;
    for (const child of children.get(at) ?? []) walk(child);
  };
  walk(pid);
  return total;
}

/** CPU ms of this process's children that have exited and been reaped (e.g. an mbsync run). */
export function reapedChildrenCpuMs(): number {
  return statTimes("self")?.reaped ?? Number.NaN;
}
