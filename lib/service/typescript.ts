/**
 * TypeScript task code: types are stripped before the code runs, with Sucrase.
 *
 * Why Sucrase: it removes type syntax without re-printing the rest, so every line of the
 * output is the line of the same number in the source, and an error's line in the guest is
 * the user's own line with no source map to apply. It is small, pure JavaScript, and kept
 * up to date with TypeScript's syntax. `typescript`'s `transpileModule` would do the same
 * job with a 9 MB dependency and line shifts that need a source map; esbuild needs a native
 * binary.
 *
 * @module
 */
import { transform } from "sucrase";
import { BadRequestError } from "../errors.ts";

/** Languages of task code. */
export type TaskLang = "js" | "ts";

/** JavaScript of `source` in `lang`; throws a {@link BadRequestError} naming the line. */
export function toJavaScript(source: string, lang: TaskLang, what = "task code"): string {
  if (lang === "js") return source;
  try {
    return transform(source, {
      transforms: ["typescript"],
      disableESTransforms: true,
      keepUnusedImports: true,
    }).code;
  } catch (error) {
    const loc = (error as { loc?: { line: number; column: number } }).loc;
    const message = String((error as Error).message ?? error).replace(/ \(\d+:\d+\)$/, "");
    const where = loc ? ` at line ${loc.line}, column ${loc.column + 1}` : "";
    throw new BadRequestError(`Cannot compile TypeScript ${what}${where}: ${message}`, {
      cause: error,
    });
  }
}
