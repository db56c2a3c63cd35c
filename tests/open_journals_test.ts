/**
 * Journals kept open between appends: the bytes land at the end of the file at the path,
 * also after the file was replaced or cut, a link put in its place is refused, and the
 * handles beyond the limit are closed without losing an append.
 */
import { assertEquals, assertRejects } from "@std/assert";
import { join } from "node:path";
import { OpenJournals } from "../lib/store/open_journals.ts";
import { NotRegularFileError } from "../lib/store/atomic_file.ts";

const bytes = (text: string) => new TextEncoder().encode(text);
const OPTIONS = { fsync: true, create: true };

async function withDir(fn: (dir: string, journals: OpenJournals) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  const journals = new OpenJournals(2);
  try {
    await fn(dir, journals);
  } finally {
    journals.closeAll();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("appends through a kept handle land at the end of the journal, also after it was cut", async () => {
  await withDir(async (dir, journals) => {
    const path = join(dir, "a.journal.jsonl");
    await journals.append("a", path, bytes("1\n"), OPTIONS);
    await journals.append("a", path, bytes("2\n"), OPTIONS);
    await Deno.truncate(path, 2);
    await journals.append("a", path, bytes("3\n"), OPTIONS);
    assertEquals(await Deno.readTextFile(path), "1\n3\n");
  });
});

Deno.test("a journal replaced at its path is appended to as the new file, not the old one", async () => {
  await withDir(async (dir, journals) => {
    const path = join(dir, "a.journal.jsonl");
    await journals.append("a", path, bytes("old\n"), OPTIONS);
    await Deno.writeTextFile(`${path}.new`, "restored\n");
    await Deno.rename(`${path}.new`, path);
    await journals.append("a", path, bytes("next\n"), OPTIONS);
    assertEquals(await Deno.readTextFile(path), "restored\nnext\n");
  });
});

Deno.test("a link put in place of a kept journal is refused, never written through", async () => {
  await withDir(async (dir, journals) => {
    const path = join(dir, "a.journal.jsonl");
    const target = join(dir, "elsewhere");
    await Deno.writeTextFile(target, "");
    await journals.append("a", path, bytes("1\n"), OPTIONS);
    await Deno.remove(path);
    await Deno.symlink(target, path);
    await assertRejects(
      () => journals.append("a", path, bytes("2\n"), OPTIONS),
      NotRegularFileError,
    );
    assertEquals(await Deno.readTextFile(target), "");
  });
});

Deno.test("beyond the limit the least recently used handles are closed and every append lands", async () => {
  await withDir(async (dir, journals) => {
    const ids = ["a", "b", "c", "d"];
    await Promise.all(ids.map(async (id) => {
      for (let i = 0; i < 5; i++) {
        await journals.append(id, join(dir, id), bytes(`${id}${i}\n`), OPTIONS);
      }
    }));
    for (const id of ids) {
      assertEquals(
        await Deno.readTextFile(join(dir, id)),
        [0, 1, 2, 3, 4].map((i) => `${id}${i}\n`).join(""),
      );
    }
  });
});
