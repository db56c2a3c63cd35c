/** The states directory lock: one holder at a time, released on release or process exit. */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { join } from "node:path";
import { DirectoryLockedError, LOCK_FILE_NAME, lockDirectory } from "../lib/store/dir_lock.ts";
import { NotRegularFileError } from "../lib/store/atomic_file.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a second lock on the same directory is refused, naming the holder, until released", async () => {
  await withTempDir(async (parent) => {
    const dir = join(parent, "states");
    const first = await lockDirectory(dir);
    const error = await assertRejects(() => lockDirectory(dir), DirectoryLockedError);
    assertEquals(
      error.message,
      `Cannot use STATES_DIR "${dir}": another FlowState server (process ${Deno.pid}) is ` +
        "using it; stop it or choose another directory",
    );
    first.release();
    first.release();
    using again = await lockDirectory(dir);
    assert(again);
  });
});

Deno.test({
  name: "the lock creates the directory 0700 and tightens an existing one",
  ignore: Deno.build.os === "windows",
  fn: async () => {
    await withTempDir(async (parent) => {
      const dir = join(parent, "open");
      await Deno.mkdir(dir, { mode: 0o755 });
      await Deno.chmod(dir, 0o755);
      using _ = await lockDirectory(dir);
      assertEquals((await Deno.stat(dir)).mode! & 0o777, 0o700);
      assertEquals((await Deno.stat(join(dir, LOCK_FILE_NAME))).mode! & 0o777, 0o600);
    });
  },
});

Deno.test({
  name: "a symlink planted as the lock file is refused, not followed",
  ignore: Deno.build.os === "windows",
  fn: async () => {
    await withTempDir(async (dir) => {
      const target = join(dir, "target");
      await Deno.writeTextFile(target, "keep");
      await Deno.symlink(target, join(dir, LOCK_FILE_NAME));
      await assertRejects(() => lockDirectory(dir), NotRegularFileError, "symbolic link");
      assertEquals(await Deno.readTextFile(target), "keep");
    });
  },
});

Deno.test("a lock held by a process that was killed is free again", async () => {
  await withTempDir(async (dir) => {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `import { lockDirectory } from ${
          JSON.stringify(new URL("../lib/store/dir_lock.ts", import.meta.url).href)
        };
await lockDirectory(${JSON.stringify(dir)});
console.log("locked");
setInterval(() => {}, 1000);`,
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    while (!out.includes("locked")) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    await assertRejects(() => lockDirectory(dir), DirectoryLockedError, "another FlowState");
    child.kill("SIGKILL");
    await child.status;
    await reader.cancel();
    using _ = await lockDirectory(dir);
  });
});
