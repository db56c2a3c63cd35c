/**
 * Guest source: `FormData`, as the XMLHttpRequest standard defines it: an ordered list of
 * entries whose names and values are scalar-value strings or `File`s (a `Blob` becomes a
 * `File` named "blob"). There is no form element in the guest, so the constructor takes
 * no argument.
 *
 * @module
 */
import type { GuestCore, GuestExports, GuestModule, GuestUse } from "./guest_types.ts";
import type { BlobExports } from "./blob.ts";

/** One entry of a form: a name and a string or a File. */
export type FormEntry = [string, unknown];

/** What the form data module exports besides its global. */
export interface FormDataExports {
  /** The entries of `form` (live), or `undefined` when it is no FormData. */
  entriesOf(form: unknown): FormEntry[] | undefined;
  /** A new FormData holding `entries` (taken, not copied). */
  fromEntries(entries: FormEntry[]): globalThis.FormData;
}

function formDataFactory(core: GuestCore, use: GuestUse): GuestExports {
  const { StringCtor, TypeErrorCtor, arrayPush, arraySplice } = core;
  const blob = use("blob") as unknown as BlobExports & { File: typeof File; Blob: typeof Blob };
  const FileCtor = blob.File;
  const toWellFormed = (String.prototype as unknown as { toWellFormed(this: string): string })
    .toWellFormed;
  const usv = (value: unknown) => toWellFormed.call(StringCtor(value));

  const entryValue = (value: unknown, filename: unknown, hasName: boolean): unknown => {
    const bytes = blob.bytesOf(value);
    if (bytes === undefined) {
      if (hasName) {
        throw new TypeErrorCtor("FormData: a filename is allowed only with a Blob value");
      }
      return usv(value);
    }
    const isFile = value instanceof FileCtor;
    if (isFile && !hasName) return value;
    const name = hasName ? usv(filename) : isFile ? (value as File).name : "blob";
    return blob.make(
      bytes,
      (value as Blob).type,
      name,
      isFile ? (value as File).lastModified : undefined,
    );
  };
  const need = (count: number, wanted: number, what: string) => {
    if (count < wanted) {
      throw new TypeErrorCtor(
        "Failed to execute '" + what + "' on 'FormData': " + wanted + " argument" +
          (wanted > 1 ? "s" : "") + " required, but only " + count + " present",
      );
    }
  };

  let entriesOf: FormDataExports["entriesOf"] = () => undefined;
  let adopt: (form: FormData, list: FormEntry[]) => void = () => {};

  class FormData {
    #list: FormEntry[] = [];
    static {
      entriesOf = (form) =>
        form !== null && typeof form === "object" && #list in form ? form.#list : undefined;
      adopt = (form, list) => {
        form.#list = list;
      };
    }
    constructor(form?: unknown) {
      if (form !== undefined) {
        throw new TypeErrorCtor(
          "Failed to construct 'FormData': there are no form elements in this runtime",
        );
      }
    }
    append(name: unknown, value: unknown, filename?: unknown): void {
      need(arguments.length, 2, "append");
      arrayPush.call(this.#list, [usv(name), entryValue(value, filename, arguments.length > 2)]);
    }
    set(name: unknown, value: unknown, filename?: unknown): void {
      need(arguments.length, 2, "set");
      const key = usv(name);
      const entry: FormEntry = [key, entryValue(value, filename, arguments.length > 2)];
      const list = this.#list;
      let found = false;
      for (let i = 0; i < list.length; i++) {
        if (list[i]![0] !== key) continue;
        if (found) arraySplice.call(list, i--, 1);
        else {
          list[i] = entry;
          found = true;
        }
      }
      if (!found) arrayPush.call(list, entry);
    }
    delete(name: unknown): void {
      need(arguments.length, 1, "delete");
      const key = usv(name);
      const list = this.#list;
      for (let i = list.length - 1; i >= 0; i--) {
        if (list[i]![0] === key) arraySplice.call(list, i, 1);
      }
    }
    get(name: unknown): unknown {
      need(arguments.length, 1, "get");
      const key = usv(name);
      for (const entry of this.#list) if (entry[0] === key) return entry[1];
      return null;
    }
    getAll(name: unknown): unknown[] {
      need(arguments.length, 1, "getAll");
      const key = usv(name);
      const out: unknown[] = [];
      for (const entry of this.#list) if (entry[0] === key) arrayPush.call(out, entry[1]);
      return out;
    }
    has(name: unknown): boolean {
      need(arguments.length, 1, "has");
      const key = usv(name);
      for (const entry of this.#list) if (entry[0] === key) return true;
      return false;
    }
    forEach(
      callback: (value: unknown, name: string, form: FormData) => void,
      ...optional: unknown[]
    ) {
      const thisArg = optional[0];
      if (typeof callback !== "function") {
        throw new TypeErrorCtor("FormData.forEach: the callback is not a function");
      }
      for (let i = 0; i < this.#list.length; i++) {
        const entry = this.#list[i]!;
        callback.call(thisArg, entry[1], entry[0], this);
      }
    }
    *entries(): IterableIterator<[string, unknown]> {
      for (let i = 0; i < this.#list.length; i++) {
        const entry = this.#list[i]!;
        yield [entry[0], entry[1]];
      }
    }
    *keys(): IterableIterator<string> {
      for (let i = 0; i < this.#list.length; i++) yield this.#list[i]![0];
    }
    *values(): IterableIterator<unknown> {
      for (let i = 0; i < this.#list.length; i++) yield this.#list[i]![1];
    }
    [Symbol.iterator]() {
      return this.entries();
    }
    get [Symbol.toStringTag](): string {
      return "FormData";
    }
  }

  const fromEntries = (entries: FormEntry[]): FormData => {
    const form = new FormData();
    adopt(form, entries);
    return form;
  };
  core.webIdl(FormData);
  return { FormData, entriesOf, fromEntries };
}

/** The `FormData` global. */
export const formDataModule: GuestModule = {
  name: "formdata",
  globals: ["FormData"],
  factory: formDataFactory,
};
