/**
 * The compact in-memory index of a store's tasks: id, status, name, pause count and times
 * of every task, in columns (typed arrays and one byte buffer of ids) sorted by creation
 * time then id, so that a million tasks cost about 50 MB and are listed, filtered and
 * paged without reading a record. Stores keep it beside their records; it is their answer
 * to `list`, `counts` and `finishedBefore`.
 *
 * Slots are ordered by (createdAt, id); a removed task's slot is marked dead and reclaimed
 * by a later compaction, so binary search stays valid. A task is inserted where it sorts:
 * cheap when tasks come roughly in creation order, as they do from a server and from its
 * index file; each one that sorts earlier moves the slots after it.
 *
 * @module
 */
import { BadRequestError } from "../errors.ts";
import { TaskStatus } from "./task_store.ts";

/** What the index knows of a task: the fields of a list entry. */
export interface TaskSummary {
  id: string;
  name: string;
  status: TaskStatus;
  pauseCount: number;
  createdAt: string;
  updatedAt: string;
  /**
   * Whether the task has a `callbackUrl` (a webhook), for the index to filter on (see
   * {@link ListQuery.callback}); `undefined` when not known. Listings leave it out.
   */
  callback?: boolean;
}

/** A task as the index holds it: times in ms, `name` `null` when it is the id. */
export interface IndexEntry {
  id: string;
  status: TaskStatus;
  createdMs: number;
  updatedMs: number;
  pauseCount: number;
  name: string | null;
  /** Whether the task has a `callbackUrl`; `null` when not known. */
  callback: boolean | null;
}

/** The columns of an index, one element a task, in order ({@link TaskIndex.columns}). */
export interface IndexColumns {
  created: Float64Array<ArrayBuffer>;
  updated: Float64Array<ArrayBuffer>;
  status: Uint8Array<ArrayBuffer>;
  pauses: Uint32Array<ArrayBuffer>;
  idStart: Uint32Array<ArrayBuffer>;
  idLength: Uint8Array<ArrayBuffer>;
  /** Code in `names`, or -1 when the name is the id. */
  name: Int32Array<ArrayBuffer>;
  /** 1: has a callback URL; 2: not known. */
  flags: Uint8Array<ArrayBuffer>;
  ids: Uint8Array<ArrayBuffer>;
  names: readonly string[];
}

/** Order of a listing: by creation time, then id. */
export type ListOrder = "oldest" | "newest";

/** What to list. */
export interface ListQuery {
  /** Only tasks in one of these statuses (all when omitted or empty). */
  status?: readonly TaskStatus[];
  /** Only tasks with this exact name. */
  name?: string;
  /**
   * Only tasks with a `callbackUrl` (and those the index does not know about); a store
   * may answer others too.
   */
  callback?: true;
  /** Default `oldest`. */
  order?: ListOrder;
  /** Continue after the task this cursor (a page's `nextCursor`) names. */
  cursor?: string;
  /** Most tasks in the page. */
  limit: number;
}

/** A page of a listing. */
export interface TaskPage {
  tasks: TaskSummary[];
  /** Cursor of the next page, or `null` when this page is the last. */
  nextCursor: string | null;
}

/** Every status, in the order of their codes in the index. */
const STATUSES: readonly TaskStatus[] = Object.values(TaskStatus);
const DEAD = 255;
/** Flags column values: the task has a callback URL; whether it has is not known. */
const CALLBACK = 1;
const CALLBACK_UNKNOWN = 2;
/** Name column value of a task whose name is its id. */
const SAME_AS_ID = -1;
const INITIAL_CAPACITY = 1024;
/** Compaction once this many slots are dead and they are a quarter of all. */
const COMPACT_MIN_DEAD = 1024;

/** Whether a task in `status` is finished: it runs no more unless retried. */
export function isFinished(status: TaskStatus): boolean {
  return status !== TaskStatus.Running && status !== TaskStatus.Paused;
}

/** The code of `status` in the index (its position among the statuses). */
export function statusCode(status: TaskStatus): number {
  const code = STATUSES.indexOf(status);
  if (code === -1) throw new TypeError(`Unknown task status "${status}"`);
  return code;
}

/** The status of a {@link statusCode}, `undefined` for none. */
export function statusOfCode(code: number): TaskStatus | undefined {
  return STATUSES[code];
}

/** Every status, in the order of their codes. */
export const STATUS_LIST: readonly TaskStatus[] = STATUSES;

/** Milliseconds of an ISO time, 0 when it does not parse. */
export function timeMs(iso: string): number {
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? ms : 0;
}

/** The cursor that continues a listing after the task created at `createdMs` with `id`. */
export function encodeCursor(createdMs: number, id: string): string {
  return `${createdMs}.${id}`;
}

/** The position a cursor names; a `BadRequestError` when it is not one. */
export function decodeCursor(cursor: string): { createdMs: number; id: string } {
  const match = /^(0|[1-9][0-9]{0,15})\.([A-Za-z0-9][A-Za-z0-9._-]{0,127})$/.exec(cursor);
  if (!match) throw new BadRequestError(`Invalid cursor ${JSON.stringify(cursor)}`);
  return { createdMs: Number(match[1]), id: match[2]! };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The index of a store's tasks. Ids are ASCII (see the store's id pattern). */
export class TaskIndex {
  #size = 0;
  #capacity = INITIAL_CAPACITY;
  #created = new Float64Array(INITIAL_CAPACITY);
  #updated = new Float64Array(INITIAL_CAPACITY);
  #status = new Uint8Array(INITIAL_CAPACITY);
  #pauses = new Uint32Array(INITIAL_CAPACITY);
  #idStart = new Uint32Array(INITIAL_CAPACITY);
  #idLength = new Uint8Array(INITIAL_CAPACITY);
  #name = new Int32Array(INITIAL_CAPACITY);
  #flags = new Uint8Array(INITIAL_CAPACITY);
  #ids = new Uint8Array(INITIAL_CAPACITY * 32);
  #idsEnd = 0;
  #names: string[] = [];
  #nameCodes = new Map<string, number>();
  #dead = 0;
  readonly #counts = new Uint32Array(STATUSES.length);

  /** Number of tasks. */
  get size(): number {
    return this.#size - this.#dead;
  }

  /** Tasks by status. */
  counts(): Record<TaskStatus, number> {
    return Object.fromEntries(
      STATUSES.map((status, code) => [status, this.#counts[code]!]),
    ) as Record<TaskStatus, number>;
  }

  /** Adds the task or replaces what the index knows of it. */
  set(summary: TaskSummary): void {
    const code = statusCode(summary.status);
    const name = summary.name === summary.id ? SAME_AS_ID : this.nameCode(summary.name);
    this.setEntry(
      encoder.encode(summary.id),
      timeMs(summary.createdAt),
      timeMs(summary.updatedAt),
      code,
      summary.pauseCount,
      name,
      summary.callback ?? null,
    );
  }

  /**
   * {@link set} in the index's own terms, for loading an index file: `status` a
   * {@link statusCode}, `name` a {@link nameCode} or -1 when the name is the id.
   */
  setEntry(
    id: Uint8Array,
    createdMs: number,
    updatedMs: number,
    status: number,
    pauseCount: number,
    name: number,
    callback: boolean | null,
  ): void {
    const slot = this.#lowerBound(createdMs, id);
    if (slot === this.#size || this.#compare(slot, createdMs, id) !== 0) {
      this.#insertAt(slot, createdMs, id);
    } else if (this.#status[slot] === DEAD) {
      this.#dead--;
    } else {
      this.#counts[this.#status[slot]!]!--;
    }
    this.#status[slot] = status;
    this.#counts[status]!++;
    this.#updated[slot] = updatedMs;
    this.#pauses[slot] = pauseCount;
    this.#name[slot] = name;
    this.#flags[slot] = callback === null ? CALLBACK_UNKNOWN : callback ? CALLBACK : 0;
  }

  /** The code {@link setEntry} takes for `name`. */
  nameCode(name: string): number {
    let code = this.#nameCodes.get(name);
    if (code === undefined) {
      code = this.#names.push(name) - 1;
      this.#nameCodes.set(name, code);
    }
    return code;
  }

  /** The summary of the task, or `undefined` when the index has none. */
  get(id: string, createdAt: string): TaskSummary | undefined {
    const slot = this.#find(timeMs(createdAt), encoder.encode(id));
    return slot === -1 ? undefined : this.#summary(slot);
  }

  /** Forgets the task; whether the index had it. */
  delete(id: string, createdAt: string): boolean {
    return this.deleteEntry(encoder.encode(id), timeMs(createdAt));
  }

  /** {@link delete} in the index's own terms. */
  deleteEntry(id: Uint8Array, createdMs: number): boolean {
    const slot = this.#find(createdMs, id);
    if (slot === -1) return false;
    this.#counts[this.#status[slot]!]!--;
    this.#status[slot] = DEAD;
    this.#dead++;
    if (this.#dead >= COMPACT_MIN_DEAD && this.#dead * 4 >= this.#size) this.#compact();
    return true;
  }

  /** Whether the index has the task created at `createdMs` with `id`. */
  has(id: string, createdMs: number): boolean {
    return this.#find(createdMs, encoder.encode(id)) !== -1;
  }

  /** A copy that later changes of this index do not affect. */
  clone(): TaskIndex {
    const copy = new TaskIndex();
    copy.#size = this.#size;
    copy.#capacity = this.#size || 1;
    copy.#created = this.#created.slice(0, copy.#capacity);
    copy.#updated = this.#updated.slice(0, copy.#capacity);
    copy.#status = this.#status.slice(0, copy.#capacity);
    copy.#pauses = this.#pauses.slice(0, copy.#capacity);
    copy.#idStart = this.#idStart.slice(0, copy.#capacity);
    copy.#idLength = this.#idLength.slice(0, copy.#capacity);
    copy.#name = this.#name.slice(0, copy.#capacity);
    copy.#flags = this.#flags.slice(0, copy.#capacity);
    copy.#ids = this.#ids.slice(0, this.#idsEnd || 1);
    copy.#idsEnd = this.#idsEnd;
    copy.#names = [...this.#names];
    copy.#nameCodes = new Map(this.#nameCodes);
    copy.#dead = this.#dead;
    copy.#counts.set(this.#counts);
    return copy;
  }

  /** The live slots' columns, compacted (copies): what a snapshot of the index holds. */
  columns(): IndexColumns {
    const copy = this.clone();
    if (copy.#dead > 0) copy.#compact();
    const n = copy.#size;
    return {
      created: copy.#created.slice(0, n),
      updated: copy.#updated.slice(0, n),
      status: copy.#status.slice(0, n),
      pauses: copy.#pauses.slice(0, n),
      idStart: copy.#idStart.slice(0, n),
      idLength: copy.#idLength.slice(0, n),
      name: copy.#name.slice(0, n),
      flags: copy.#flags.slice(0, n),
      ids: copy.#ids.slice(0, copy.#idsEnd),
      names: copy.#names,
    };
  }

  /**
   * The index of `columns` (as {@link columns} gives them; taken over, not copied), or why
   * they cannot be one: columns of different lengths, ids or names out of range, an
   * unknown status, or slots out of order.
   */
  static fromColumns(columns: IndexColumns): TaskIndex | string {
    const { created, updated, status, pauses, idStart, idLength, name, flags, ids, names } =
      columns;
    const n = created.length;
    const sizes = [updated, status, pauses, idStart, idLength, name, flags].map((c) => c.length);
    if (sizes.some((size) => size !== n)) return "columns of different lengths";
    const index = new TaskIndex();
    index.#size = n;
    index.#capacity = n;
    index.#created = created;
    index.#updated = updated;
    index.#status = status;
    index.#pauses = pauses;
    index.#idStart = idStart;
    index.#idLength = idLength;
    index.#name = name;
    index.#flags = flags;
    index.#ids = ids.length > 0 ? ids : new Uint8Array(1);
    index.#idsEnd = ids.length;
    index.#names = [...names];
    for (const [code, each] of index.#names.entries()) index.#nameCodes.set(each, code);
    for (let slot = 0; slot < n; slot++) {
      const code = status[slot]!;
      if (code >= STATUSES.length) return `slot ${slot} has an unknown status`;
      if (idStart[slot]! + idLength[slot]! > ids.length || idLength[slot] === 0) {
        return `slot ${slot} has an id out of range`;
      }
      const ref = name[slot]!;
      if (ref !== SAME_AS_ID && (ref < 0 || ref >= names.length)) {
        return `slot ${slot} has a name out of range`;
      }
      if (flags[slot]! > CALLBACK_UNKNOWN) return `slot ${slot} has unknown flags`;
      if (slot > 0) {
        const start = idStart[slot]!;
        const id = ids.subarray(start, start + idLength[slot]!);
        if (index.#compare(slot - 1, created[slot]!, id) >= 0) {
          return `slot ${slot} is out of order`;
        }
      }
      index.#counts[code]!++;
    }
    return index;
  }

  /** A page of tasks matching `query`, with the cursor of the next page. */
  list(query: ListQuery): TaskPage {
    const newest = query.order === "newest";
    const matches = this.#matcher(query);
    let slot: number;
    if (query.cursor === undefined) {
      slot = newest ? this.#size - 1 : 0;
    } else {
      const { createdMs, id } = decodeCursor(query.cursor);
      const bytes = encoder.encode(id);
      const bound = this.#lowerBound(createdMs, bytes);
      const exact = bound < this.#size && this.#compare(bound, createdMs, bytes) === 0;
      slot = newest ? bound - 1 : exact ? bound + 1 : bound;
    }
    const step = newest ? -1 : 1;
    const tasks: TaskSummary[] = [];
    let last = -1;
    for (; slot >= 0 && slot < this.#size; slot += step) {
      if (!matches(slot)) continue;
      if (tasks.length === query.limit) {
        return { tasks, nextCursor: encodeCursor(this.#created[last]!, this.#id(last)) };
      }
      tasks.push(this.#summary(slot));
      last = slot;
    }
    return { tasks, nextCursor: null };
  }

  /** Up to `limit` finished tasks last updated before `cutoffMs`, oldest first. */
  finishedBefore(cutoffMs: number, limit: number): TaskSummary[] {
    const finished = STATUSES.map(isFinished);
    const found: TaskSummary[] = [];
    for (let slot = 0; slot < this.#size && found.length < limit; slot++) {
      const code = this.#status[slot]!;
      if (code !== DEAD && finished[code] && this.#updated[slot]! < cutoffMs) {
        found.push(this.#summary(slot));
      }
    }
    return found;
  }

  /** Every task in one of `statuses`, oldest first. */
  having(statuses: readonly TaskStatus[]): TaskSummary[] {
    return this.list({ status: statuses, limit: Number.MAX_SAFE_INTEGER }).tasks;
  }

  /** Every task, oldest first, with its times in ms and its name `null` when it is the id. */
  *entries(): Generator<IndexEntry> {
    for (let slot = 0; slot < this.#size; slot++) {
      const status = this.#status[slot]!;
      if (status === DEAD) continue;
      const ref = this.#name[slot]!;
      yield {
        id: this.#id(slot),
        status: STATUSES[status]!,
        createdMs: this.#created[slot]!,
        updatedMs: this.#updated[slot]!,
        pauseCount: this.#pauses[slot]!,
        name: ref === SAME_AS_ID ? null : this.#names[ref]!,
        callback: flagOf(this.#flags[slot]!),
      };
    }
  }

  // --- internals ------------------------------------------------------------------------

  #matcher(query: ListQuery): (slot: number) => boolean {
    const wanted = new Uint8Array(STATUSES.length + 1);
    const statuses = query.status?.length ? query.status : STATUSES;
    for (const status of statuses) wanted[STATUSES.indexOf(status)] = 1;
    const byStatus = (slot: number) => {
      const code = this.#status[slot]!;
      return code !== DEAD && wanted[code] === 1;
    };
    const flags = this.#flags;
    const byCallback = query.callback
      ? (slot: number) => byStatus(slot) && flags[slot] !== 0
      : byStatus;
    const name = query.name;
    if (name === undefined) return byCallback;
    const code = this.#nameCodes.get(name) ?? -2;
    const bytes = encoder.encode(name);
    return (slot) => {
      if (!byCallback(slot)) return false;
      const ref = this.#name[slot]!;
      return ref === code || (ref === SAME_AS_ID && this.#idEquals(slot, bytes));
    };
  }

  #summary(slot: number): TaskSummary {
    const id = this.#id(slot);
    const ref = this.#name[slot]!;
    return {
      id,
      name: ref === SAME_AS_ID ? id : this.#names[ref]!,
      status: STATUSES[this.#status[slot]!]!,
      pauseCount: this.#pauses[slot]!,
      createdAt: new Date(this.#created[slot]!).toISOString(),
      updatedAt: new Date(this.#updated[slot]!).toISOString(),
    };
  }

  #id(slot: number): string {
    const start = this.#idStart[slot]!;
    return decoder.decode(this.#ids.subarray(start, start + this.#idLength[slot]!));
  }

  #idEquals(slot: number, bytes: Uint8Array): boolean {
    if (this.#idLength[slot] !== bytes.length) return false;
    const start = this.#idStart[slot]!;
    for (let i = 0; i < bytes.length; i++) if (this.#ids[start + i] !== bytes[i]) return false;
    return true;
  }

  /** The live slot of the task, or -1. */
  #find(createdMs: number, id: Uint8Array): number {
    const slot = this.#lowerBound(createdMs, id);
    return slot < this.#size && this.#compare(slot, createdMs, id) === 0 &&
        this.#status[slot] !== DEAD
      ? slot
      : -1;
  }

  /** The first slot whose key is not below (createdMs, id). */
  #lowerBound(createdMs: number, id: Uint8Array): number {
    // New tasks come last: check that before searching.
    if (this.#size === 0 || this.#compare(this.#size - 1, createdMs, id) < 0) return this.#size;
    let low = 0;
    let high = this.#size - 1;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.#compare(middle, createdMs, id) < 0) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** The key of `slot` compared with (createdMs, id): negative when it sorts first. */
  #compare(slot: number, createdMs: number, id: Uint8Array): number {
    const created = this.#created[slot]!;
    if (created !== createdMs) return created < createdMs ? -1 : 1;
    const start = this.#idStart[slot]!;
    const length = this.#idLength[slot]!;
    const common = Math.min(length, id.length);
    for (let i = 0; i < common; i++) {
      const difference = this.#ids[start + i]! - id[i]!;
      if (difference !== 0) return difference;
    }
    return length - id.length;
  }

  #insertAt(slot: number, createdMs: number, id: Uint8Array): void {
    if (this.#size === this.#capacity) this.#grow(Math.max(this.#capacity * 2, INITIAL_CAPACITY));
    if (this.#idsEnd + id.length > this.#ids.length) {
      const ids = new Uint8Array(Math.max(this.#ids.length * 2, this.#idsEnd + id.length));
      ids.set(this.#ids.subarray(0, this.#idsEnd));
      this.#ids = ids;
    }
    if (slot < this.#size) {
      for (const column of this.#columns()) column.copyWithin(slot + 1, slot, this.#size);
    }
    this.#ids.set(id, this.#idsEnd);
    this.#idStart[slot] = this.#idsEnd;
    this.#idLength[slot] = id.length;
    this.#idsEnd += id.length;
    this.#created[slot] = createdMs;
    this.#size++;
  }

  #columns() {
    return [
      this.#created,
      this.#updated,
      this.#status,
      this.#pauses,
      this.#idStart,
      this.#idLength,
      this.#name,
      this.#flags,
    ] as const;
  }

  #grow(capacity: number): void {
    const grow = <T extends Float64Array | Uint8Array | Uint32Array | Int32Array>(
      column: T,
      make: (n: number) => T,
    ): T => {
      const next = make(capacity);
      next.set(column.subarray(0, this.#size) as never);
      return next;
    };
    this.#created = grow(this.#created, (n) => new Float64Array(n));
    this.#updated = grow(this.#updated, (n) => new Float64Array(n));
    this.#status = grow(this.#status, (n) => new Uint8Array(n));
    this.#pauses = grow(this.#pauses, (n) => new Uint32Array(n));
    this.#idStart = grow(this.#idStart, (n) => new Uint32Array(n));
    this.#idLength = grow(this.#idLength, (n) => new Uint8Array(n));
    this.#name = grow(this.#name, (n) => new Int32Array(n));
    this.#flags = grow(this.#flags, (n) => new Uint8Array(n));
    this.#capacity = capacity;
  }

  /** Drops the dead slots, the ids they kept and the names no task has any more. */
  #compact(): void {
    const ids = new Uint8Array(Math.max(INITIAL_CAPACITY * 32, this.#idsEnd));
    const names: string[] = [];
    const nameCodes = new Map<string, number>();
    let to = 0;
    let idsEnd = 0;
    for (let from = 0; from < this.#size; from++) {
      if (this.#status[from] === DEAD) continue;
      const start = this.#idStart[from]!;
      const length = this.#idLength[from]!;
      ids.set(this.#ids.subarray(start, start + length), idsEnd);
      this.#idStart[to] = idsEnd;
      idsEnd += length;
      for (const column of this.#columns()) {
        if (column !== this.#idStart) column[to] = column[from]!;
      }
      const ref = this.#name[from]!;
      if (ref !== SAME_AS_ID) {
        const name = this.#names[ref]!;
        let code = nameCodes.get(name);
        if (code === undefined) {
          code = names.push(name) - 1;
          nameCodes.set(name, code);
        }
        this.#name[to] = code;
      }
      to++;
    }
    this.#ids = ids;
    this.#idsEnd = idsEnd;
    this.#names = names;
    this.#nameCodes = nameCodes;
    this.#size = to;
    this.#dead = 0;
  }
}

function flagOf(flags: number): boolean | null {
  return flags === CALLBACK_UNKNOWN ? null : flags === CALLBACK;
}
