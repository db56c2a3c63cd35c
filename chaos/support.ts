/**
 * What every chaos scenario shares beside the test harness (`testing/`): the scenario
 * types, a seeded random generator, a check of the states directory, log-file greps, and
 * {@link startChaosServer}, which starts the real server with its whole log kept in a file.
 *
 * @module
 */
import { join } from "@std/path";
import { isIndexFileName } from "../lib/store/index_file.ts";
import { ServerProcess, type StartOptions } from "../testing/server_process.ts";
import { LOCK_FILE_NAME } from "../lib/store/dir_lock.ts";

export { delay as sleep } from "../testing/wait.ts";
export type { HttpResult } from "../testing/server_process.ts";
export type { ServerProcess };

/**
 * Starts the server for a scenario: everything it prints is also written to `server.log` in
 * its work directory (kept after the run when `CHAOS_KEEP` is set), at log level `info`.
 */
export function startChaosServer(options: StartOptions = {}): Promise<ServerProcess> {
  return ServerProcess.start({
    logFile: true,
    keep: Deno.env.get("CHAOS_KEEP") !== undefined,
    keptLines: 4_000,
    ...options,
    env: { LOG_LEVEL: "info", ...options.env },
  });
}

/** A seeded pseudo-random generator (mulberry32). */
export class Random {
  #state: number;
  readonly seed: number;

  constructor(seed: number) {
    this.seed = seed >>> 0;
    this.#state = this.seed;
  }

  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) | 0;
    let t = Math.imul(this.#state ^ (this.#state >>> 15), 1 | this.#state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** One element of `items`. */
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** `count` random bytes. */
  bytes(count: number): Uint8Array<ArrayBuffer> {
    const out = new Uint8Array(count);
    for (let i = 0; i < count; i++) out[i] = Math.floor(this.next() * 256);
    return out;
  }
}

/** The seed of a run: `CHAOS_SEED` when set, else a random one. */
export function chaosSeed(): number {
  const text = Deno.env.get("CHAOS_SEED");
  if (text && /^[0-9]+$/.test(text)) return Number(text) >>> 0;
  return crypto.getRandomValues(new Uint32Array(1))[0]!;
}

/** Every problem found in the states directory (files that do not parse). */
export interface StatesCheck {
  records: number;
  journals: number;
  journalLines: number;
  /** Bytes of journals past their record's `eventsBytes` (left by an interrupted save). */
  uncommittedBytes: number;
  /** Leftover temp files of interrupted writes. */
  tempFiles: string[];
  /** Files that are neither records nor journals. */
  foreign: string[];
  /** Entries that are not regular files (not read). */
  special: string[];
  /** What did not parse, one line each. */
  unreadable: string[];
}

/**
 * Parses every `.json` record and every journal line in `dir`. With `committedOnly`, only
 * the journal's first `eventsBytes` bytes are required to parse (what the store's contract
 * promises while a fault is in place).
 */
export async function checkStatesDir(
  dir: string,
  { committedOnly = false }: { committedOnly?: boolean } = {},
): Promise<StatesCheck> {
  const out: StatesCheck = {
    records: 0,
    journals: 0,
    journalLines: 0,
    uncommittedBytes: 0,
    tempFiles: [],
    foreign: [],
    special: [],
    unreadable: [],
  };
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    // Symlinks (to /dev/full, say) and directories are fault injections, not state files.
    if (entry.isFile) names.push(entry.name);
    else out.special.push(entry.name);
  }
  names.sort();
  const eventsBytes = new Map<string, number>();
  for (const name of names) {
    if (/^\..+\.[0-9a-f]{16}\.tmp$/.test(name)) {
      out.tempFiles.push(name);
    } else if (name === LOCK_FILE_NAME) {
      // The server's lock on the directory.
    } else if (isIndexFileName(name)) {
      // The store's index of the tasks (and its snapshot), not a task's file.
    } else if (name.endsWith(".journal.jsonl")) {
      out.journals++;
    } else if (name.endsWith(".json")) {
      out.records++;
      try {
        const record = JSON.parse(await Deno.readTextFile(join(dir, name)));
        if (typeof record?.eventsBytes !== "number") throw new Error("no eventsBytes");
        eventsBytes.set(name.slice(0, -".json".length), record.eventsBytes);
      } catch (error) {
        out.unreadable.push(`${name}: ${String(error)}`);
      }
    } else {
      out.foreign.push(name);
    }
  }
  for (const name of names) {
    if (!name.endsWith(".journal.jsonl")) continue;
    const id = name.slice(0, -".journal.jsonl".length);
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(join(dir, name));
    } catch (error) {
      out.unreadable.push(`${name}: ${String(error)}`);
      continue;
    }
    const committed = eventsBytes.get(id);
    if (committed !== undefined && bytes.length > committed) {
      out.uncommittedBytes += bytes.length - committed;
    }
    if (committed !== undefined && bytes.length < committed) {
      out.unreadable.push(`${name}: ${bytes.length} bytes, fewer than eventsBytes ${committed}`);
    }
    const checked = committedOnly && committed !== undefined ? bytes.subarray(0, committed) : bytes;
    const text = new TextDecoder().decode(checked);
    const lines = text.split("\n");
    const rest = lines.pop();
    if (rest) out.unreadable.push(`${name}: ends with a partial line ${JSON.stringify(rest)}`);
    lines.forEach((line, index) => {
      out.journalLines++;
      try {
        const event = JSON.parse(line);
        if (typeof event?.type !== "string") throw new Error("no type");
      } catch (error) {
        out.unreadable.push(`${name} line ${index + 1}: ${String(error)}`);
      }
    });
  }
  return out;
}

/** Formats bytes as MiB with one decimal. */
export function mib(bytes: number | null): string {
  return bytes === null ? "n/a" : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** Options every scenario takes. */
export interface ScenarioOptions {
  /** The short form (for `deno task test`). */
  short: boolean;
  /** Progress output. */
  log?: (line: string) => void;
  /** Seed of the random choices. */
  seed?: number;
}

/** What a scenario reports. */
export interface ScenarioResult {
  name: string;
  durationMs: number;
  /** Figures for the table, in order. */
  figures: Record<string, string | number>;
  /** Violated expectations; empty when the scenario passed. */
  problems: string[];
  /** Sub-cases skipped, with the reason. */
  skipped: string[];
}

/** Lines of the server's whole log file matching `pattern`. */
export async function grepLogFile(path: string, pattern: RegExp): Promise<string[]> {
  try {
    const text = await Deno.readTextFile(path);
    return text.split("\n").filter((line) => pattern.test(line));
  } catch {
    return [];
  }
}
