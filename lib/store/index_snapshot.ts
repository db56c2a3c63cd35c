/**
 * A binary snapshot of a {@link TaskIndex}: its columns as they are in memory, so that a
 * store of a million tasks loads its index with one read and no parsing (the index file,
 * `_index.tsv`, then holds only the changes made since the snapshot).
 *
 * Layout (little-endian): a 32-byte header, `FSIX`, the format version (u32, 1), the task
 * count `n`, the bytes of the ids and of the names (u32 each); then, each starting at a
 * multiple of 8, `created` and `updated` (f64 × n), `pauses` and `idStart` (u32 × n),
 * `name` (i32 × n), `status`, `idLength` and `flags` (u8 × n), the ids' bytes, and the
 * names as a JSON array.
 *
 * @module
 */
import { type IndexColumns, TaskIndex } from "./task_index.ts";

const MAGIC = [0x46, 0x53, 0x49, 0x58]; // "FSIX"
const VERSION = 1;
const HEADER_BYTES = 32;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

const align = (offset: number) => Math.ceil(offset / 8) * 8;

/** Where each section starts, for `n` tasks, `idBytes` of ids and `nameBytes` of names. */
function layout(n: number, idBytes: number, nameBytes: number) {
  const created = HEADER_BYTES;
  const updated = created + 8 * n;
  const pauses = updated + 8 * n;
  const idStart = align(pauses + 4 * n);
  const name = align(idStart + 4 * n);
  const status = align(name + 4 * n);
  const idLength = status + n;
  const flags = idLength + n;
  const ids = flags + n;
  const names = ids + idBytes;
  return {
    created,
    updated,
    pauses,
    idStart,
    name,
    status,
    idLength,
    flags,
    ids,
    names,
    end: names + nameBytes,
  };
}

/** Whether this machine stores numbers little-endian (the snapshot's order). */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The snapshot of `index`. */
export function encodeSnapshot(index: TaskIndex): Uint8Array {
  if (!LITTLE_ENDIAN) throw new Error("Index snapshots need a little-endian machine");
  const c = index.columns();
  const n = c.created.length;
  const names = encoder.encode(JSON.stringify(c.names));
  const at = layout(n, c.ids.length, names.length);
  const bytes = new Uint8Array(at.end);
  const view = new DataView(bytes.buffer);
  bytes.set(MAGIC, 0);
  view.setUint32(4, VERSION, true);
  view.setUint32(8, n, true);
  view.setUint32(12, c.ids.length, true);
  view.setUint32(16, names.length, true);
  const put = (offset: number, column: ArrayBufferView) =>
    bytes.set(new Uint8Array(column.buffer, column.byteOffset, column.byteLength), offset);
  put(at.created, c.created);
  put(at.updated, c.updated);
  put(at.pauses, c.pauses);
  put(at.idStart, c.idStart);
  put(at.name, c.name);
  put(at.status, c.status);
  put(at.idLength, c.idLength);
  put(at.flags, c.flags);
  bytes.set(c.ids, at.ids);
  bytes.set(names, at.names);
  return bytes;
}

/** The index a snapshot holds, or why `bytes` are not one. */
export function decodeSnapshot(bytes: Uint8Array): TaskIndex | string {
  if (bytes.length < HEADER_BYTES || MAGIC.some((byte, i) => bytes[i] !== byte)) {
    return "Not an index snapshot";
  }
  if (!LITTLE_ENDIAN) return "Index snapshots need a little-endian machine";
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(4, true) !== VERSION) return "An index snapshot of another version";
  const n = view.getUint32(8, true);
  const at = layout(n, view.getUint32(12, true), view.getUint32(16, true));
  if (at.end !== bytes.length) return "An index snapshot of the wrong size";
  // The columns are views of the file's bytes when they are aligned (they are, read into a
  // buffer of their own): no copy, and nothing left to collect.
  const aligned = bytes.byteOffset % 8 === 0 && bytes.buffer instanceof ArrayBuffer;
  const buffer = aligned ? bytes.buffer as ArrayBuffer : bytes.slice().buffer;
  const base = aligned ? bytes.byteOffset : 0;
  const f64 = (start: number) => new Float64Array(buffer, base + start, n);
  const u32 = (start: number) => new Uint32Array(buffer, base + start, n);
  const u8 = (start: number, length = n) => new Uint8Array(buffer, base + start, length);
  let names: unknown;
  try {
    names = JSON.parse(decoder.decode(bytes.subarray(at.names, at.end)));
  } catch {
    return "An index snapshot with unreadable names";
  }
  if (!Array.isArray(names) || names.some((name) => typeof name !== "string")) {
    return "An index snapshot with unreadable names";
  }
  const columns: IndexColumns = {
    created: f64(at.created),
    updated: f64(at.updated),
    pauses: u32(at.pauses),
    idStart: u32(at.idStart),
    name: new Int32Array(buffer, base + at.name, n),
    status: u8(at.status),
    idLength: u8(at.idLength),
    flags: u8(at.flags),
    ids: u8(at.ids, at.names - at.ids),
    names,
  };
  const index = TaskIndex.fromColumns(columns);
  return typeof index === "string" ? `An index snapshot with ${index}` : index;
}
