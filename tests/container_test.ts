/**
 * The container, as checked as text can be (no image is built here): the Dockerfile runs
 * the server with the permissions of `deno task start`, checks `/health`, keeps the states
 * writable by its runtime user, and `.dockerignore` leaves out tests, benchmarks and chaos
 * but nothing the server loads.
 */
import { assert, assertEquals } from "@std/assert";
import { fromFileUrl } from "@std/path";

const ROOT = new URL("../", import.meta.url);
const read = (name: string) => Deno.readTextFile(new URL(name, ROOT));

/** The Dockerfile's instructions, continuation lines joined. */
async function instructions(): Promise<{ name: string; args: string }[]> {
  const text = (await read("Dockerfile")).replace(/\\\n\s*/g, " ");
  return text.split("\n").map((line) => line.trim()).filter((line) =>
    line !== "" && !line.startsWith("#")
  ).map((line) => {
    const [name, ...rest] = line.split(/\s+/);
    return { name: name!.toUpperCase(), args: rest.join(" ") };
  });
}

/** `deno run` flags and script of a command line. */
function runArgs(words: string[]): { flags: string[]; script: string } {
  const at = words.indexOf("run");
  assert(words[0] === "deno" && at === 1, `a deno run command: ${words.join(" ")}`);
  const rest = words.slice(at + 1);
  return {
    flags: rest.filter((w) => w.startsWith("-")),
    script: rest.find((w) => !w.startsWith("-"))!,
  };
}

Deno.test("the image runs server.ts with exactly the permissions of deno task start", async () => {
  const config = JSON.parse(await read("deno.json"));
  const start = runArgs(config.tasks.start.command.split(/\s+/));
  const cmd = (await instructions()).filter((i) => i.name === "CMD").at(-1)!;
  const image = runArgs(JSON.parse(cmd.args));
  assertEquals(image.script, "server.ts");
  assertEquals(image, start);
});

Deno.test("the image checks /health, runs as a non-root user and owns only its states", async () => {
  const all = await instructions();
  const health = all.find((i) => i.name === "HEALTHCHECK");
  assert(health && health.args.includes("/health"), "a HEALTHCHECK on /health");
  const user = all.findIndex((i) => i.name === "USER");
  assertEquals(all[user]!.args, "deno");
  const chown = all.findIndex((i) => i.name === "RUN" && i.args.includes("chown -R deno:deno"));
  assert(chown >= 0 && chown < user, "the states are given to the runtime user before USER");
  const env = all.find((i) => i.name === "ENV")!.args;
  const statesDir = /STATES_DIR=(\S+)/.exec(env)![1]!;
  assert(all[chown]!.args.includes(statesDir), `${statesDir} is chowned`);
  assertEquals(all.find((i) => i.name === "VOLUME")!.args, `["${statesDir}"]`);
  assert(/HOST=0\.0\.0\.0/.test(env), "reachable from outside the container");
  const compose = await read("compose.yaml");
  assert(compose.includes(`states:${statesDir}`), "compose mounts a volume on the states");
  assert(/build: \./.test(compose), "compose builds this Dockerfile");
});

Deno.test(".dockerignore keeps tests, benchmarks and chaos out but nothing the server loads", async () => {
  const ignored = (await read(".dockerignore")).split("\n").map((l) => l.trim()).filter((l) =>
    l !== "" && !l.startsWith("#")
  );
  for (const dir of ["tests", "testing", "bench", "chaos", "states", "node_modules", ".git"]) {
    assert(ignored.includes(dir), `${dir} is ignored`);
  }
  const root = fromFileUrl(ROOT);
  for (const entry of ["server.ts", "lib/service/engine_process.ts"]) {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", entry],
      cwd: root,
      stdout: "piped",
      stderr: "null",
    }).output();
    const graph = JSON.parse(new TextDecoder().decode(output.stdout)) as {
      modules: { specifier: string }[];
    };
    const local = graph.modules.map((m) => m.specifier).filter((s) => s.startsWith("file:"))
      .map((s) => fromFileUrl(s).slice(root.length));
    assert(local.length > 10, `the module graph of ${entry}`);
    for (const file of local) {
      if (file.startsWith("node_modules/")) continue; // installed in the image
      const top = file.split("/")[0]!;
      assert(!ignored.includes(top), `${entry} loads ${file}, which .dockerignore leaves out`);
    }
  }
});
