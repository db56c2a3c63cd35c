/**
 * FetchFlow as a library outside this project: imported by path from a Deno program with
 * no import map and only `--allow-read`, with no `Deno.*` API in the engine room, and as the
 * npm package `deno task build:npm` makes, whose README examples run under Node.js.
 */
import { assert, assertEquals } from "@std/assert";
import { fromFileUrl, join } from "@std/path";

const ROOT = fromFileUrl(new URL("../", import.meta.url));

async function run(command: string, args: string[], cwd: string) {
  const output = await new Deno.Command(command, { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

/** The `console.log(...); // <output>` lines of an example: what it must print. */
function expectedOutput(example: string): string[] {
  return [...example.matchAll(/console\.log\(.*\); \/\/ (.*)$/gm)].map((m) => m[1]!);
}

Deno.test("the engine imports by path from another project with --allow-read only", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fetchflow-user-" });
  try {
    const mod = new URL("../lib/mod.ts", import.meta.url).href;
    await Deno.writeTextFile(
      join(dir, "main.ts"),
      `import { executeCode, resumeExecution } from ${JSON.stringify(mod)};
const paused = await executeCode('const r = await fetch("https://x.test/n"); (await r.json()).n + 1');
const state = JSON.parse(JSON.stringify(paused.state));
const done = await resumeExecution(state, { id: paused.fetchRequest!.id, success: true, status: 200, data: { n: 41 } });
console.log(paused.type, done.type, done.result);
const sync = await executeCode("[1, 2, 3].length", { variant: "sync" });
console.log(sync.result);
`,
    );
    const result = await run(Deno.execPath(), ["run", "--allow-read", "main.ts"], dir);
    assertEquals(result.code, 0, result.stderr);
    assertEquals(result.stdout.trim().split("\n"), ["paused completed 42", "3"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the engine room and lib/mod.ts use no Deno API and no import-map name", async () => {
  const files = ["lib/mod.ts", "lib/json_depth.ts"];
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(join(ROOT, dir))) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else if (entry.name.endsWith(".ts")) files.push(path);
    }
  };
  await walk("lib/engine");
  const imports = Object.keys(JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json"))).imports);
  for (const file of files) {
    const code = (await Deno.readTextFile(join(ROOT, file))).split("\n")
      .filter((line) => !/^\s*(\*|\/\/|\/\*)/.test(line)).join("\n");
    assert(!/\bDeno\./.test(code), `${file} uses the Deno namespace`);
    for (const name of imports) {
      assert(
        !code.includes(`"${name}"`) && !code.includes(`"${name}/`),
        `${file} imports "${name}"`,
      );
    }
  }
});

Deno.test("the npm package's README examples run under Node.js 20 or later", async () => {
  const version = await run("node", ["--version"], ROOT);
  assertEquals(version.code, 0);
  assert(Number(/^v(\d+)/.exec(version.stdout)![1]) >= 20, version.stdout);
  // Inside the project, so the package's dependencies resolve from its node_modules.
  const out = await Deno.makeTempDir({ dir: ROOT, prefix: ".npm_test_" });
  const user = await Deno.makeTempDir({ prefix: "fetchflow-node-" });
  try {
    const build = await run(Deno.execPath(), ["task", "build:npm", out], ROOT);
    assertEquals(build.code, 0, build.stderr);
    const pkg = JSON.parse(await Deno.readTextFile(join(out, "package.json")));
    assertEquals(pkg.type, "module");
    for (const file of ["esm/mod.js", "esm/mod.d.ts"]) await Deno.stat(join(out, file));
    assertEquals(Object.keys(pkg.dependencies).sort(), [
      "@jitl/quickjs-wasmfile-release-asyncify",
      "@jitl/quickjs-wasmfile-release-sync",
      "quickjs-emscripten",
    ]);
    await Deno.mkdir(join(user, "node_modules", "@flowstate"), { recursive: true });
    await Deno.symlink(out, join(user, "node_modules", ...pkg.name.split("/")));
    const readme = await Deno.readTextFile(join(out, "README.md"));
    const examples = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]!);
    assertEquals(examples.length, 2);
    for (const [index, example] of examples.entries()) {
      const file = `example_${index}.mjs`;
      await Deno.writeTextFile(join(user, file), example);
      const result = await run("node", [file], user);
      assertEquals(result.code, 0, result.stderr);
      assertEquals(result.stdout.trimEnd().split("\n"), expectedOutput(example), example);
    }
  } finally {
    await Deno.remove(out, { recursive: true });
    await Deno.remove(user, { recursive: true });
  }
});
