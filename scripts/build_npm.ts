/**
 * Builds the npm package of the FetchFlow engine (`lib/mod.ts` and the engine room) in
 * `dist/npm` (or the directory given as the first argument): ES modules and `.d.ts`
 * declarations, compiled by the TypeScript compiler from a staged copy of the sources in
 * which `npm:<name>@<version>` specifiers become package names (and dependencies of the
 * package) and relative `.ts` imports become `.js`.
 *
 * Usage: `deno task build:npm [out-dir]`
 *
 * @module
 */
import ts from "typescript";
import { dirname, fromFileUrl, join, relative } from "@std/path";

const ROOT = fromFileUrl(new URL("../", import.meta.url));
const ENTRY = "lib/mod.ts";
const out = Deno.args[0] ?? join(ROOT, "dist/npm");
const stage = await Deno.makeTempDir({ dir: ROOT, prefix: ".npm_stage_" });

/** Declarations the Deno-checked sources take from the runtime, for the compiler. */
const SHIM = `declare module "node:fs/promises" {
  export function readFile(path: string | URL): Promise<Uint8Array>;
}
declare module "node:crypto" {
  interface Hash { update(data: Uint8Array | string): Hash; digest(): Uint8Array }
  export function createHash(algorithm: string): Hash;
  export function createHmac(algorithm: string, key: Uint8Array): Hash;
}
interface ImportMeta { resolve(specifier: string): string }
`;

const NPM_SPECIFIER = /(["'])npm:((?:@[^/"'@]+\/)?[^/"'@]+)@([^/"']+)(\/[^"']*)?\1/g;
const RELATIVE_TS = /(["'])(\.{1,2}\/[^"']+)\.ts\1/g;

/** The project's own modules `ENTRY` loads, relative to the project root. */
async function localModules(): Promise<string[]> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", ENTRY],
    cwd: ROOT,
    stdout: "piped",
  }).output();
  if (!output.success) throw new Error(`deno info ${ENTRY} failed`);
  const graph = JSON.parse(new TextDecoder().decode(output.stdout)) as {
    modules: { specifier: string }[];
  };
  return graph.modules.map((m) => m.specifier).filter((s) => s.startsWith("file:"))
    .map((s) => relative(ROOT, fromFileUrl(s)));
}

try {
  const dependencies: Record<string, string> = {};
  const files: string[] = [];
  for (const file of await localModules()) {
    if (!file.startsWith("lib/")) throw new Error(`${ENTRY} loads ${file}, outside lib/`);
    const source = (await Deno.readTextFile(join(ROOT, file)))
      .replace(NPM_SPECIFIER, (_m, quote, name, version, path = "") => {
        dependencies[name] = version;
        return `${quote}${name}${path}${quote}`;
      })
      .replace(RELATIVE_TS, "$1$2.js$1");
    const staged = join(stage, file.slice("lib/".length));
    await Deno.mkdir(dirname(staged), { recursive: true });
    await Deno.writeTextFile(staged, source);
    files.push(staged);
  }
  const shim = join(stage, "runtime_shim.d.ts");
  await Deno.writeTextFile(shim, SHIM);

  await Deno.remove(out, { recursive: true }).catch(() => {});
  const program = ts.createProgram([...files, shim], {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    lib: ["lib.es2023.d.ts", "lib.esnext.disposable.d.ts", "lib.dom.d.ts", "lib.dom.iterable.d.ts"],
    strict: true,
    noUncheckedIndexedAccess: true,
    useUnknownInCatchVariables: true,
    noImplicitOverride: true,
    skipLibCheck: true,
    declaration: true,
    rootDir: stage,
    outDir: join(out, "esm"),
    newLine: ts.NewLineKind.LineFeed,
  });
  const emitted = program.emit();
  const problems = [...ts.getPreEmitDiagnostics(program), ...emitted.diagnostics];
  if (problems.length > 0) {
    const host: ts.FormatDiagnosticsHost = {
      getCanonicalFileName: (f) => f,
      getCurrentDirectory: () => stage,
      getNewLine: () => "\n",
    };
    throw new Error(ts.formatDiagnostics(problems, host));
  }

  const config = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
  const pkg = {
    name: "@flowstate/fetchflow",
    version: config.version,
    description: "Run JavaScript in a QuickJS sandbox that pauses at every fetch() and resumes " +
      "from a plain-JSON state",
    type: "module",
    exports: { ".": { types: "./esm/mod.d.ts", import: "./esm/mod.js" } },
    types: "./esm/mod.d.ts",
    files: ["esm", "README.md"],
    engines: { node: ">=20" },
    sideEffects: false,
    dependencies: Object.fromEntries(Object.entries(dependencies).sort()),
  };
  await Deno.writeTextFile(join(out, "package.json"), JSON.stringify(pkg, null, 2) + "\n");
  await Deno.copyFile(join(ROOT, "npm/README.md"), join(out, "README.md"));
  console.log(`Built ${pkg.name}@${pkg.version} in ${out} (${files.length} modules)`);
} finally {
  await Deno.remove(stage, { recursive: true });
}
