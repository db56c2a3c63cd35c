/**
 * Disk faults: a full or read-only states directory must make the requests that write
 * fail with a clear 5xx (`{success: false, error}` naming the OS reason), never leave a
 * half-written file or lose a task, and the server must recover once the disk does.
 *
 * Tests run as root, where `chmod` does not stop writes, so the faults are made with:
 *
 * - a journal replaced by a symlink to `/dev/full`: the store never opens a state file
 *   through a symlink, so the request is a clear 409 and nothing is written through it;
 * - a record path that is a directory (the atomic rename fails with EISDIR);
 * - a small tmpfs as the states directory, filled up (when `mount` works);
 * - `chattr +i` on the states directory, else a read-only bind mount, else `chmod` for
 *   non-root users (or the sub-case is skipped with the reason).
 *
 * @module
 */
import { join } from "@std/path";
import {
  checkStatesDir,
  grepLogFile,
  type HttpResult,
  type ScenarioOptions,
  type ScenarioResult,
  type ServerProcess,
  sleep,
  startChaosServer,
  type StatesCheck,
} from "./support.ts";
import { startUpstream, valueFor } from "../testing/upstream.ts";

interface TaskView {
  id: string;
  status: string;
  result?: unknown;
  error?: { name: string; message: string; kind: string };
  fetchRequest?: { id: string; url: string };
}

/** Size of the tmpfs of the full-disk sub-case. */
const TMPFS_SIZE = "2m";

/** Runs a command; `ok` with its output, never throws. */
async function sh(command: string, ...args: string[]): Promise<{ ok: boolean; output: string }> {
  try {
    const result = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" })
      .output();
    const decoder = new TextDecoder();
    const output = (decoder.decode(result.stdout) + decoder.decode(result.stderr)).trim();
    return { ok: result.success, output };
  } catch (error) {
    return { ok: false, output: String(error) };
  }
}

/** A fault that is in place until `remove()` is called. */
interface Fault {
  /** How it was made, for the figures. */
  how: string;
  remove(): Promise<void>;
}

/** Makes `dir` read-only by the first method that works here, or says why none did. */
async function makeReadOnly(dir: string): Promise<Fault | string> {
  const reasons: string[] = [];
  const chattr = await sh("chattr", "+i", dir);
  if (chattr.ok) {
    if (await isReallyReadOnly(dir)) {
      return { how: "chattr +i", remove: async () => void await sh("chattr", "-i", dir) };
    }
    await sh("chattr", "-i", dir);
    reasons.push("chattr +i did not stop writes");
  } else {
    reasons.push(`chattr +i failed: ${chattr.output || "no output"}`);
  }
  const bind = await sh("mount", "--bind", dir, dir);
  if (bind.ok) {
    const ro = await sh("mount", "-o", "remount,bind,ro", dir);
    if (ro.ok && await isReallyReadOnly(dir)) {
      return { how: "read-only bind mount", remove: async () => void await sh("umount", dir) };
    }
    await sh("umount", dir);
    reasons.push(`read-only remount failed: ${ro.output || "writes still work"}`);
  } else {
    reasons.push(`mount --bind failed: ${bind.output || "no output"}`);
  }
  if (Deno.uid() !== 0) {
    const mode = (await Deno.stat(dir)).mode ?? 0o755;
    await Deno.chmod(dir, 0o555);
    if (await isReallyReadOnly(dir)) {
      return { how: "chmod 555", remove: () => Deno.chmod(dir, mode & 0o7777) };
    }
    await Deno.chmod(dir, mode & 0o7777);
    reasons.push("chmod 555 did not stop writes");
  }
  return reasons.join("; ");
}

/** Whether creating a file in `dir` fails. */
async function isReallyReadOnly(dir: string): Promise<boolean> {
  const probe = join(dir, ".chaos-probe");
  try {
    await Deno.writeTextFile(probe, "x");
  } catch {
    return true;
  }
  await Deno.remove(probe).catch(() => {});
  return false;
}

/** Fills the file system of `path` until a one-byte write fails; returns the bytes written. */
async function fillDisk(path: string): Promise<number> {
  using file = await Deno.open(path, { write: true, create: true });
  let written = 0;
  for (const size of [1024 * 1024, 64 * 1024, 4096, 1]) {
    const chunk = new Uint8Array(size);
    for (;;) {
      try {
        written += await file.write(chunk);
      } catch {
        break;
      }
    }
  }
  return written;
}

/** Runs the disk faults scenario. */
export async function runDiskFaults(options: ScenarioOptions): Promise<ScenarioResult> {
  const started = performance.now();
  const log = options.log ?? (() => {});
  const problems: string[] = [];
  const skipped: string[] = [];
  const figures: Record<string, string | number> = {};
  const upstream = startUpstream({ minDelayMs: 5, maxDelayMs: 30 });
  const servers: ServerProcess[] = [];
  const cleanups: (() => Promise<void>)[] = [];
  let failingRequests = 0;

  /** A clear 5xx: JSON `{success: false, error}` whose error names the OS reason. */
  const expectClear5xx = (what: string, reply: HttpResult, reason: RegExp, expected = "5xx") => {
    failingRequests++;
    const body = reply.body as { success?: unknown; error?: unknown } | undefined;
    const matches = expected === "5xx"
      ? reply.status >= 500 && reply.status <= 599
      : String(reply.status) === expected;
    if (!matches) {
      problems.push(
        `${what}: answered ${reply.status} ${reply.text.slice(0, 300)}, expected a ${expected}`,
      );
    } else if (body?.success !== false || typeof body.error !== "string") {
      problems.push(
        `${what}: ${expected} without {success: false, error}: ${reply.text.slice(0, 300)}`,
      );
    } else if (!reason.test(body.error)) {
      problems.push(`${what}: error "${body.error}" does not say ${reason}`);
    }
  };
  const expectStates = (what: string, check: StatesCheck) => {
    for (const line of check.unreadable) problems.push(`${what}: unreadable state: ${line}`);
    if (check.tempFiles.length > 0) {
      problems.push(`${what}: half-written temp files left: ${check.tempFiles.join(", ")}`);
    }
  };

  const fetchCode = (id: string) =>
    `const r = await fetch(${
      JSON.stringify(upstream.url(`/v/disk/${id}`))
    }); (await r.json()).value`;

  try {
    // A journal symlinked to /dev/full stands for a full disk; the start task's permissions
    // refuse the device itself, so this server runs with all of them.
    const server = await startChaosServer({ label: "disk", flags: ["--allow-all"] });
    servers.push(server);
    const dir = server.statesDir;

    const view = async (srv: ServerProcess, id: string): Promise<TaskView | undefined> =>
      ((await srv.request(`/status?id=${id}`)).body as { task?: TaskView } | undefined)
        ?.task;
    /** Creates a task paused on its fetch (no automatic fetch); returns the request id. */
    const paused = async (srv: ServerProcess, id: string): Promise<string> => {
      const reply = await srv.request("/task", {
        method: "POST",
        body: { id, code: fetchCode(id), autoFetch: false },
      });
      const task = (reply.body as { task?: TaskView } | undefined)?.task;
      if (reply.status !== 200 || task?.status !== "paused" || !task.fetchRequest) {
        throw new Error(`Cannot create paused task ${id}: ${reply.status} ${reply.text}`);
      }
      return task.fetchRequest.id;
    };
    const deliver = (srv: ServerProcess, id: string, fetchId: string, value: number) =>
      srv.request("/call", {
        method: "POST",
        body: {
          taskId: id,
          fetchResponse: {
            id: fetchId,
            success: true,
            status: 200,
            headers: { "content-type": "application/json" },
            data: { value },
          },
        },
      });
    const expectCompleted = async (srv: ServerProcess, what: string, id: string, want: unknown) => {
      let task: TaskView | undefined;
      const deadline = Date.now() + 30_000;
      do {
        task = await view(srv, id);
        if (task?.status === "completed" || task?.status === "error") break;
        await sleep(100);
      } while (Date.now() < deadline);
      if (task?.status !== "completed" || JSON.stringify(task.result) !== JSON.stringify(want)) {
        problems.push(
          `${what}: task ${id} is ${task?.status} ${
            JSON.stringify(task?.result ?? task?.error)
          }, expected completed with ${JSON.stringify(want)}`,
        );
      }
    };
    const snapshot = async (id: string) => await Deno.readTextFile(join(dir, `${id}.json`));
    const expectUnchanged = async (what: string, id: string, before: string) => {
      const after = await Deno.readTextFile(join(dir, `${id}.json`)).catch((e) => String(e));
      if (after !== before) problems.push(`${what}: the record of ${id} changed during the fault`);
    };
    const done = await server.request("/task", {
      method: "POST",
      body: { id: "disk-done", code: "6 * 7" },
    });
    if (done.status !== 200) problems.push(`setup: POST /task answered ${done.status}`);

    // 1. A paused task whose journal is /dev/full.
    {
      const what = "journal on /dev/full, POST /call";
      const fetchId = await paused(server, "disk-full-1");
      const journal = join(dir, "disk-full-1.journal.jsonl");
      const saved = await Deno.readFile(journal);
      const record = await snapshot("disk-full-1");
      await Deno.remove(journal);
      await Deno.symlink("/dev/full", journal);
      expectClear5xx(
        what,
        await deliver(server, "disk-full-1", fetchId, 7),
        /symbolic link/,
        "409",
      );
      await expectUnchanged(what, "disk-full-1", record);
      expectStates(what, await checkStatesDir(dir, { committedOnly: true }));
      await Deno.remove(journal);
      await Deno.writeFile(journal, saved);
      const again = await deliver(server, "disk-full-1", fetchId, 7);
      if (again.status !== 200) {
        problems.push(`${what}: after the fault, /call answered ${again.status} ${again.text}`);
      }
      await expectCompleted(server, what, "disk-full-1", 7);
      log(`disk faults: ${what} done`);
    }

    // 2. A new task whose journal is /dev/full: saved as running, recovered later.
    {
      const what = "journal on /dev/full, POST /task";
      const id = "disk-full-2";
      const journal = join(dir, `${id}.journal.jsonl`);
      await Deno.symlink("/dev/full", journal);
      const reply = await server.request("/task", {
        method: "POST",
        body: { id, code: fetchCode(id) },
      });
      expectClear5xx(what, reply, /symbolic link/, "409");
      expectStates(what, await checkStatesDir(dir, { committedOnly: true }));
      const known = await view(server, id);
      figures["task whose creation got a 5xx"] = known ? `kept (${known.status})` : "not created";
      await sleep(300);
      await Deno.remove(journal);
      if (known) await expectCompleted(server, what, id, valueFor(`/v/disk/${id}`));
      log(`disk faults: ${what} done`);
    }

    // 3. A new task whose record path is a directory.
    {
      const what = "record path is a directory, POST /task";
      const id = "disk-dir-3";
      await Deno.mkdir(join(dir, `${id}.json`));
      const reply = await server.request("/task", { method: "POST", body: { id, code: "6 * 7" } });
      expectClear5xx(what, reply, /Is a directory|os error 21/);
      expectStates(what, await checkStatesDir(dir, { committedOnly: true }));
      await Deno.remove(join(dir, `${id}.json`));
      const again = await server.request("/task", { method: "POST", body: { id, code: "6 * 7" } });
      if (again.status !== 200) {
        problems.push(
          `${what}: after the fault, POST /task answered ${again.status} ${again.text}`,
        );
      }
      await expectCompleted(server, what, id, 42);
      log(`disk faults: ${what} done`);
    }

    // 4. A paused task whose record path becomes a directory.
    {
      const what = "record path is a directory, POST /call";
      const id = "disk-dir-4";
      const fetchId = await paused(server, id);
      const path = join(dir, `${id}.json`);
      const record = await snapshot(id);
      await Deno.rename(path, join(server.workDir, `${id}.json.aside`));
      await Deno.mkdir(path);
      expectClear5xx(what, await deliver(server, id, fetchId, 8), /Is a directory|os error 21/);
      expectStates(what, await checkStatesDir(dir, { committedOnly: true }));
      await Deno.remove(path);
      await Deno.rename(join(server.workDir, `${id}.json.aside`), path);
      await expectUnchanged(what, id, record);
      const again = await deliver(server, id, fetchId, 8);
      if (again.status !== 200) {
        problems.push(`${what}: after the fault, /call answered ${again.status} ${again.text}`);
      }
      await expectCompleted(server, what, id, 8);
      log(`disk faults: ${what} done`);
    }

    // 5. A read-only states directory.
    {
      const what = "read-only states directory";
      const fetchId = await paused(server, "disk-ro-5");
      const record = await snapshot("disk-ro-5");
      const fault = await makeReadOnly(dir);
      if (typeof fault === "string") {
        skipped.push(`${what}: no way to make a directory read-only here (${fault})`);
      } else {
        cleanups.push(fault.remove);
        figures["read-only by"] = fault.how;
        const reason =
          /Operation not permitted|Read-only file system|Permission denied|os error (1|13|30)\b/;
        const created = await server.request("/task", {
          method: "POST",
          body: { id: "disk-ro-new", code: "1" },
        });
        expectClear5xx(`${what}, POST /task`, created, reason);
        expectClear5xx(
          `${what}, POST /call`,
          await deliver(server, "disk-ro-5", fetchId, 9),
          reason,
        );
        await expectUnchanged(what, "disk-ro-5", record);
        expectStates(what, await checkStatesDir(dir, { committedOnly: true }));
        await fault.remove();
        cleanups.pop();
        const again = await server.request("/task", {
          method: "POST",
          body: { id: "disk-ro-new", code: "1" },
        });
        if (again.status !== 200) {
          problems.push(
            `${what}: after the fault, POST /task answered ${again.status} ${again.text}`,
          );
        }
        const call = await deliver(server, "disk-ro-5", fetchId, 9);
        if (call.status !== 200) {
          problems.push(`${what}: after the fault, /call answered ${call.status} ${call.text}`);
        }
        await expectCompleted(server, what, "disk-ro-5", 9);
        await expectCompleted(server, what, "disk-ro-new", 1);
      }
      log(`disk faults: ${what} done`);
    }

    // Every task acknowledged (or kept) survives a restart, and the files all parse.
    {
      const before = ((await server.request("/status")).body as { tasks: TaskView[] }).tasks;
      await server.shutdown();
      expectStates("after the faults", await checkStatesDir(dir));
      await server.restart();
      const after = ((await server.request("/status")).body as { tasks: TaskView[] }).tasks;
      const lost = before.filter((task) => !after.some((other) => other.id === task.id));
      if (lost.length > 0) {
        problems.push(`tasks lost by a restart: ${lost.map((t) => t.id).join(", ")}`);
      }
      const unfinished = after.filter((task) => task.status !== "completed");
      for (const task of unfinished) {
        problems.push(`after the restart, ${task.id} is ${task.status}`);
      }
      const skippedFiles = await grepLogFile(server.logPath, /"msg":"state file skipped"/);
      for (const line of skippedFiles) problems.push(`state file skipped at restart: ${line}`);
      figures["tasks after restart"] = after.length;
    }

    // 6. A full disk: a small tmpfs as the states directory, filled up.
    {
      const what = "full disk (tmpfs)";
      const mount = await Deno.makeTempDir({ prefix: "flowstate-chaos-tmpfs-" });
      const mounted = await sh("mount", "-t", "tmpfs", "-o", `size=${TMPFS_SIZE}`, "tmpfs", mount);
      if (!mounted.ok) {
        await Deno.remove(mount, { recursive: true });
        skipped.push(
          `${what}: mount -t tmpfs failed (${
            mounted.output || "no output"
          }); no full-disk case ran`,
        );
      } else {
        cleanups.push(async () => {
          const unmounted = await sh("umount", mount);
          if (!unmounted.ok) await sh("umount", "-l", mount);
          await Deno.remove(mount, { recursive: true });
        });
        const full = await startChaosServer({
          label: "tmpfs",
          statesDir: join(mount, "states"),
        });
        servers.push(full);
        const fetchId = await paused(full, "tmpfs-paused");
        const made = await full.request("/task", {
          method: "POST",
          body: { id: "tmpfs-done", code: "2 + 2" },
        });
        if (made.status !== 200) problems.push(`${what}: setup answered ${made.status}`);
        const records = new Map<string, string>();
        for (const id of ["tmpfs-paused", "tmpfs-done"]) {
          records.set(id, await Deno.readTextFile(join(full.statesDir, `${id}.json`)));
        }
        const filler = join(mount, "filler");
        figures["tmpfs filled with"] = `${Math.round(await fillDisk(filler) / 1024)} KiB`;
        const reason = /No space left|os error 28/;
        const created = await full.request("/task", {
          method: "POST",
          body: { id: "tmpfs-new", code: fetchCode("tmpfs-new") },
        });
        expectClear5xx(`${what}, POST /task`, created, reason);
        expectClear5xx(
          `${what}, POST /call`,
          await deliver(full, "tmpfs-paused", fetchId, 11),
          reason,
        );
        const read = await full.request("/status?id=tmpfs-done");
        if (read.status !== 200) {
          problems.push(`${what}: GET /status answered ${read.status} while full`);
        }
        for (const [id, text] of records) {
          const now = await Deno.readTextFile(join(full.statesDir, `${id}.json`));
          if (now !== text) {
            problems.push(`${what}: the record of ${id} changed while the disk was full`);
          }
        }
        expectStates(what, await checkStatesDir(full.statesDir, { committedOnly: true }));
        await Deno.remove(filler);
        const kept = await view(full, "tmpfs-new");
        if (!kept) {
          const again = await full.request("/task", {
            method: "POST",
            body: { id: "tmpfs-new", code: fetchCode("tmpfs-new") },
          });
          if (again.status !== 200) {
            problems.push(
              `${what}: after the fault, POST /task answered ${again.status} ${again.text}`,
            );
          }
        }
        const call = await deliver(full, "tmpfs-paused", fetchId, 11);
        if (call.status !== 200) {
          problems.push(`${what}: after the fault, /call answered ${call.status} ${call.text}`);
        }
        await expectCompleted(full, what, "tmpfs-paused", 11);
        await expectCompleted(full, what, "tmpfs-new", valueFor("/v/disk/tmpfs-new"));
        await full.shutdown();
        expectStates(`${what}, after`, await checkStatesDir(full.statesDir));
      }
      log(`disk faults: ${what} done`);
    }

    const errors = (await Promise.all(servers.map((s) =>
      grepLogFile(s.logPath, /"level":"error"/)
    )))
      .flat();
    for (const line of errors.slice(0, 5)) problems.push(`server error log: ${line.slice(0, 400)}`);
    figures["failing requests checked"] = failingRequests;
    return {
      name: "disk faults",
      durationMs: performance.now() - started,
      figures,
      problems,
      skipped,
    };
  } finally {
    // Processes first (they hold no files then), then the faults, then the directories.
    for (const server of servers) await server.shutdown();
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
    for (const server of servers) await server.close();
    await upstream.close();
  }
}
