/**
 * Guest source: `multipart/form-data`, both ways: the bytes of a FormData (the HTML
 * standard's encoding, with a boundary drawn from the task's entropy stream, so a replay
 * sends the same bytes) and the entries of such a body (`formData()`). Internal: loaded by
 * the body module when a form is sent or read.
 *
 * @module
 */
import type { GuestAsk, GuestCore, GuestExports, GuestModule, GuestUse } from "./guest_types.ts";
import type { BlobExports } from "./blob.ts";
import type { FormEntry } from "./form_data.ts";

/** What the multipart module exports. */
export interface MultipartExports {
  /** The body of `entries` and its content type (with the boundary). */
  serialize(entries: readonly FormEntry[]): { bytes: Uint8Array; type: string };
  /** The entries of multipart `bytes` split at `boundary`; throws a TypeError when malformed. */
  parse(bytes: Uint8Array, boundary: string): FormEntry[];
}

function multipartFactory(core: GuestCore, use: GuestUse): GuestExports {
  const { StringCtor, TypeErrorCtor, arrayPush, stringSlice, toLowerCase } = core;
  const blob = use("blob") as unknown as BlobExports & { File: typeof File };
  const ask = use("hostcall").ask as GuestAsk;
  const Uint8ArrayCtor = Uint8Array;
  const typedSet = Uint8Array.prototype.set;
  const typedSubarray = Uint8Array.prototype.subarray;
  const fromCharCode = String.fromCharCode;
  const charCodeAt = String.prototype.charCodeAt;
  const indexOf = String.prototype.indexOf;
  const replace = String.prototype.replace as unknown as (
    this: string,
    pattern: RegExp,
    by: string,
  ) => string;
  const split = String.prototype.split as unknown as (this: string, by: string) => string[];
  const trim = String.prototype.trim;
  const reflectApply = core.reflectApply;
  const HEX = "0123456789abcdef";

  const crlf = (text: string) => replace.call(text, /\r\n|\r|\n/g, "\r\n");
  const escape = (text: string) =>
    replace.call(replace.call(replace.call(text, /\n/g, "%0A"), /\r/g, "%0D"), /"/g, "%22");
  const unescape = (text: string) =>
    replace.call(replace.call(replace.call(text, /%0A/gi, "\n"), /%0D/gi, "\r"), /%22/g, '"');

  const serialize: MultipartExports["serialize"] = (entries) => {
    const random = new Uint8ArrayCtor(ask("crypto.random", 12) as ArrayBuffer);
    let boundary = "----FlowStateFormBoundary";
    for (let i = 0; i < random.length; i++) {
      boundary += HEX[random[i]! >> 4]! + HEX[random[i]! & 15]!;
    }
    const chunks: Uint8Array[] = [];
    let total = 0;
    const add = (chunk: Uint8Array) => {
      arrayPush.call(chunks, chunk);
      total += chunk.length;
    };
    for (const [name, value] of entries) {
      let head = "--" + boundary + '\r\nContent-Disposition: form-data; name="' +
        escape(crlf(name)) + '"';
      const bytes = blob.bytesOf(value);
      if (bytes === undefined) {
        add(blob.utf8(head + "\r\n\r\n" + crlf(StringCtor(value)) + "\r\n"));
        continue;
      }
      const file = value as File;
      head += '; filename="' + escape(file.name) + '"\r\nContent-Type: ' +
        (file.type === "" ? "application/octet-stream" : file.type) + "\r\n\r\n";
      add(blob.utf8(head));
      add(bytes);
      add(blob.utf8("\r\n"));
    }
    add(blob.utf8("--" + boundary + "--\r\n"));
    const all = new Uint8ArrayCtor(total);
    let at = 0;
    for (const chunk of chunks) {
      typedSet.call(all, chunk, at);
      at += chunk.length;
    }
    return { bytes: all, type: "multipart/form-data; boundary=" + boundary };
  };

  /** Bytes as a string of one character per byte, to search with string functions. */
  const latin1 = (bytes: Uint8Array): string => {
    let out = "";
    for (let at = 0; at < bytes.length; at += 8192) {
      out += reflectApply(fromCharCode, null, typedSubarray.call(bytes, at, at + 8192) as never);
    }
    return out;
  };
  const bytesOfLatin1 = (text: string): Uint8Array => {
    const out = new Uint8ArrayCtor(text.length);
    for (let i = 0; i < text.length; i++) out[i] = charCodeAt.call(text, i);
    return out;
  };
  const fail = (why: string): never => {
    throw new TypeErrorCtor("Failed to parse the body as multipart/form-data: " + why);
  };
  /** The value of parameter `key` in a Content-Disposition header, or undefined. */
  const param = (header: string, key: string): string | undefined => {
    const match = new RegExp(";\\s*" + key + '="([^"]*)"', "i").exec(header) ||
      new RegExp(";\\s*" + key + "=([^;\\s]*)", "i").exec(header);
    return match ? unescape(match[1]!) : undefined;
  };

  const parse: MultipartExports["parse"] = (bytes, boundary) => {
    const text = latin1(bytes);
    const delimiter = "--" + boundary;
    const entries: FormEntry[] = [];
    let at = indexOf.call(text, delimiter);
    if (at < 0) fail("no boundary");
    at += delimiter.length;
    for (;;) {
      if (stringSlice.call(text, at, at + 2) === "--") return entries;
      if (stringSlice.call(text, at, at + 2) !== "\r\n") fail("a boundary not followed by CRLF");
      at += 2;
      const headEnd = indexOf.call(text, "\r\n\r\n", at);
      if (headEnd < 0) fail("a part without a blank line after its headers");
      let disposition: string | undefined;
      let type = "";
      for (const line of split.call(stringSlice.call(text, at, headEnd), "\r\n")) {
        const colon = indexOf.call(line, ":");
        if (colon < 0) continue;
        const name = toLowerCase.call(trim.call(stringSlice.call(line, 0, colon)));
        const value = blob.decodeUtf8(bytesOfLatin1(trim.call(stringSlice.call(line, colon + 1))));
        if (name === "content-disposition") disposition = value;
        else if (name === "content-type") type = value;
      }
      if (disposition === undefined) fail("a part without Content-Disposition");
      const name = param(disposition!, "name");
      if (name === undefined) fail("a part without a name");
      const start = headEnd + 4;
      const end = indexOf.call(text, "\r\n" + delimiter, start);
      if (end < 0) fail("a part without a closing boundary");
      const content = typedSubarray.call(bytes, start, end) as Uint8Array;
      const filename = param(disposition!, "filename");
      arrayPush.call(entries, [
        name!,
        filename === undefined
          ? blob.decodeUtf8(content)
          : blob.make(new Uint8ArrayCtor(content), blob.normalizeType(type), filename),
      ]);
      at = end + 2 + delimiter.length;
    }
  };
  return { serialize, parse };
}

/** The internal `multipart` module. */
export const multipartModule: GuestModule = {
  name: "multipart",
  globals: [],
  factory: multipartFactory,
};
