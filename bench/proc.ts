/**
 * Process figures from `/proc`: resident memory, and CPU time split by thread kind, which
 * tells the server's main thread (HTTP, store, logging) from its engine workers.
 *
 * @module
 */

/** Clock ticks per second of `/proc/<pid>/stat` times (`getconf CLK_TCK`, 100 on Linux). */
const CLOCK_TICKS = 100;

/** VmRSS of process `pid`, bytes (from `/proc/<pid>/status`). */
export function rssOf(pid: number | "self"): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!match) throw new Error(`No VmRSS in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

/** CPU time (user + system) of a process by thread kind, ms. */
export interface ThreadCpu {
  /** The thread that runs the main isolate (HTTP, task service, store calls, logging). */
  main: number;
  /** Deno Web Workers (`worker-N`): the engine workers of the server. */
  workers: number;
  /** V8 background threads (garbage collection, compilation). */
  v8: number;
  /** Tokio threads: network I/O and blocking file system calls (writes, fsync). */
  io: number;
  /** Anything else. */
  other: number;
  total: number;
}

/** CPU time of every thread of `pid` so far, by kind; threads that ended are not counted. */
export function threadCpu(pid: number | "self"): ThreadCpu {
  const out: ThreadCpu = { main: 0, workers: 0, v8: 0, io: 0, other: 0, total: 0 };
  const mainTid = pid === "self" ? Deno.pid : pid;
  for (const entry of Deno.readDirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = Deno.readTextFileSync(`/proc/${pid}/task/${entry.name}/stat`);
    } catch {
      continue; // The thread ended meanwhile.
    }
    // The name is in parentheses and may contain spaces; fields follow the last ")".
    const close = stat.lastIndexOf(")");
    const name = stat.slice(stat.indexOf("(") + 1, close);
    const fields = stat.slice(close + 2).split(" ");
    // Fields 14 and 15 (utime, stime) of stat(5), counted from the state field (3).
    const ticks = Number(fields[11]) + Number(fields[12]);
    const ms = (ticks * 1000) / CLOCK_TICKS;
    if (Number(entry.name) === mainTid) out.main += ms;
    else if (name.startsWith("worker-")) out.workers += ms;
    else if (name.startsWith("V8 ")) out.v8 += ms;
    else if (name.startsWith("tokio")) out.io += ms;
    else out.other += ms;
    out.total += ms;
  }
  return out;
}

/** `after - before`, field by field. */
export function cpuDelta(before: ThreadCpu, after: ThreadCpu): ThreadCpu {
  return {
    main: after.main - before.main,
    workers: after.workers - before.workers,
    v8: after.v8 - before.v8,
    io: after.io - before.io,
    other: after.other - before.other,
    total: after.total - before.total,
  };
}

/** `cpu` with every field divided by `n`. */
export function cpuPer(cpu: ThreadCpu, n: number): ThreadCpu {
  return {
    main: cpu.main / n,
    workers: cpu.workers / n,
    v8: cpu.v8 / n,
    io: cpu.io / n,
    other: cpu.other / n,
    total: cpu.total / n,
  };
}

/** Busy CPU time of the whole machine so far (all cores, from `/proc/stat`), ms. */
export function machineBusyMs(): number {
  const line = Deno.readTextFileSync("/proc/stat").split("\n")[0]!;
  const ticks = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal ...: busy is all but idle and iowait.
  const busy = ticks.reduce((sum, t) => sum + t, 0) - ticks[3]! - ticks[4]!;
  return (busy * 1000) / CLOCK_TICKS;
}

/** CPU time of this process plus its waited-for children so far, ms. */
export function ownTreeCpuMs(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime, stime, cutime, cstime: fields 14 to 17 of stat(5).
  const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0);
  return (ticks * 1000) / CLOCK_TICKS;
}

/** `pid` and every process below it (the server and its engine processes). */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    let stat: string;
    try {
      stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
    } catch {
      continue; // The process ended meanwhile.
    }
    // Field 4 (ppid) is the second field after the name's closing parenthesis.
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    const list = children.get(ppid) ?? [];
    list.push(Number(entry.name));
    children.set(ppid, list);
  }
  const tree: number[] = [];
  const visit = (p: number) => {
    tree.push(p);
    for (const child of children.get(p) ?? []) visit(child);
  };
  visit(pid);
  return tree;
}

/** CPU time (user + system) so far of `pid` and of every process below it, ms by pid. */
export function treeCpu(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const p of processTree(pid)) {
    try {
      // The process's own utime and stime (fields 14 and 15), which keep the time of its
      // threads that ended, unlike a sum over its live threads.
      const stat = Deno.readTextFileSync(`/proc/${p}/stat`);
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(p, ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS);
    } catch {
      // Ended meanwhile.
    }
  }
  return out;
}

/**
 * CPU time spent between two {@link treeCpu} readings, ms: by the processes alive at the
 * second one (a process that ended in between is not counted).
 */
export function treeCpuDelta(before: Map<number, number>, after: Map<number, number>): number {
  let ms = 0;
  for (const [pid, total] of after) ms += total - (before.get(pid) ?? 0);
  return ms;
}

/** VmRSS of `pid` and every process below it, bytes. */
export function treeRss(pid: number): number {
  let bytes = 0;
  for (const p of processTree(pid)) {
    try {
      bytes += rssOf(p);
    } catch {
      // Ended meanwhile.
    }
  }
  return bytes;
}
