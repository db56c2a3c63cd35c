/**
 * Named task definitions: the files `<name>.js` and `<name>.ts` of the tasks directory.
 *
 * @module
 */
import { join } from "node:path";
import { HttpError, UnavailableError } from "../errors.ts";
import type { TaskLang } from "./typescript.ts";

/** Names a definition may have (its file name without the extension). */
export const DEFINITION_NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** One definition, as `GET /definitions` lists it. */
export interface DefinitionView {
  name: string;
  lang: TaskLang;
  /** File name inside the tasks directory. */
  file: string;
  /** Size of the file, bytes. */
  size: number;
}

const EXTENSIONS: readonly TaskLang[] = ["js", "ts"];

/** Every definition in `dir`, by name (a missing directory has none). */
export async function listDefinitions(dir: string): Promise<DefinitionView[]> {
  const found: DefinitionView[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (!entry.isFile) continue;
      const match = /^(.+)\.(js|ts)$/.exec(entry.name);
      if (!match || !DEFINITION_NAME_PATTERN.test(match[1]!)) continue;
      const { size } = await Deno.stat(join(dir, entry.name));
      found.push({ name: match[1]!, lang: match[2] as TaskLang, file: entry.name, size });
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      throw new UnavailableError(`Cannot list task definitions`, { cause: error });
    }
  }
  return found.sort((a, b) => a.name.localeCompare(b.name) || a.lang.localeCompare(b.lang));
}

/**
 * The source and language of definition `name` (`.js` first, then `.ts`). An unknown name
 * is a 400 that lists the available ones.
 */
export async function readDefinition(
  dir: string,
  name: string,
): Promise<{ source: string; lang: TaskLang }> {
  for (const lang of EXTENSIONS) {
    try {
      return { source: await Deno.readTextFile(join(dir, `${name}.${lang}`)), lang };
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) continue;
      throw new UnavailableError(`Cannot read task definition "${name}"`, { cause: error });
    }
  }
  const names = [...new Set((await listDefinitions(dir)).map((d) => d.name))];
  const available = names.length === 0 ? "there are none" : `available: ${names.join(", ")}`;
  throw new HttpError(
    400,
    `Cannot run task "${name}": no definition tasks/${name}.js or tasks/${name}.ts (${available})`,
  );
}
