/**
 * Scenario 8, scale: a states directory of 1,000,000 finished and 10,000 paused tasks
 * (`--quick`: 20,000 and 500). Measures the server's RSS holding them, the time from starting
 * the process to `/health` answering 200, and `GET /status` pages with filters and a deep
 * cursor, against an empty states directory.
 *
 * The tasks are copies of one completed and one paused task the server made (their record,
 * journal and index line, under other ids of the same length), written straight to disk:
 * making a million through HTTP would take hours on two cores. The index is then rewritten
 * as a server rewrites it (a binary snapshot and a short `_index.tsv`).
 *
 * @module
 */
import { join } from "node:path";
import { type BenchContext, tempDir } from "./context.ts";
import type { Row, ScenarioResult } from "./report.ts";
import { getJson, type Health, postJson, type TaskViewLite } from "./client.ts";
import { startServer } from "../testing/server_process.ts";
import { summarize } from "./stats.ts";
import {
  entryLine,
  INDEX_FILE_NAME,
  INDEX_HEADER,
  IndexFile,
  parseIndex,
} from "../lib/store/index_file.ts";

const MIB = 1024 * 1024;
/** Files written at once while making the fixture. */
const WRITE_CONCURRENCY = 64;
/** Requests per listing case. */
const LIST_SAMPLES = 40;

interface Template {
  id: string;
  record: string;
  journal: string;
  line: string;
}

/** `d0000001`, `p0000001`: 8 characters, like the templates' ids. */
function cloneId(prefix: string, index: number): string {
  return prefix + String(index).padStart(7, "0");
}

async function readTemplate(dir: string, id: string): Promise<Template> {
  const record = await Deno.readTextFile(join(dir, `${id}.json`));
  const journal = await Deno.readTextFile(join(dir, `${id}.journal.jsonl`));
  const parsed = JSON.parse(record);
  const line = entryLine({
    id,
    status: parsed.status,
    createdMs: Date.parse(parsed.createdAt),
    updatedMs: Date.parse(parsed.updatedAt),
    pauseCount: parsed.pauseCount,
    name: parsed.name === id ? null : parsed.name,
    callback: parsed.callbackUrl !== undefined,
  });
  return { id, record, journal, line };
}

/** Writes `count` copies of `template` (ids `prefix` + 7 digits) and returns their index lines. */
async function writeCopies(
  dir: string,
  template: Template,
  prefix: string,
  count: number,
  progress: (done: number) => void,
): Promise<string[]> {
  const quoted = JSON.stringify(template.id);
  const lines = new Array<string>(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const index = next++;
      const id = cloneId(prefix, index);
      const to = JSON.stringify(id);
      await Deno.writeTextFile(join(dir, `${id}.json`), template.record.replaceAll(quoted, to));
      await Deno.writeTextFile(
        join(dir, `${id}.journal.jsonl`),
        template.journal.replaceAll(quoted, to),
      );
      lines[index] = template.line.replace(template.id, id);
      if ((index + 1) % 50_000 === 0) progress(index + 1);
    }
  };
  await Promise.all(Array.from({ length: WRITE_CONCURRENCY }, worker));
  return lines;
}

/** Makes the states directory: `finished` completed tasks and `paused` paused ones. */
export async function makeFixture(
  ctx: BenchContext,
  dir: string,
  finished: number,
  paused: number,
): Promise<number> {
  const started = performance.now();
  const server = await startServer({
    statesDir: dir,
    env: { AUTO_FETCH: "false", FSYNC: "false", RETAIN_FINISHED: "forever" },
  });
  const doneId = cloneId("d", finished - 1);
  const pausedId = cloneId("p", paused - 1);
  try {
    const code = `const r = await fetch("${ctx.upstream.origin}/x?k=scale"); (await r.json()).n`;
    const made = await postJson<{ task: TaskViewLite }>(`${server.origin}/task`, {
      id: pausedId,
      name: "bench-paused",
      code,
    });
    if (made.task.status !== "paused") throw new Error(`Template is ${made.task.status}`);
    const done = await postJson<{ task: TaskViewLite }>(`${server.origin}/task`, {
      id: doneId,
      name: "bench-done",
      code: "const n = 6 * 7; n",
    });
    if (done.task.status !== "completed") throw new Error(`Template is ${done.task.status}`);
  } finally {
    await server.close({ graceMs: 10_000 });
  }
  const doneTemplate = await readTemplate(dir, doneId);
  const pausedTemplate = await readTemplate(dir, pausedId);
  // In the order of creation, as a server writes them: the paused template came first.
  const lines = [
    ...await writeCopies(dir, pausedTemplate, "p", paused - 1, () => {}),
    pausedTemplate.line,
    ...await writeCopies(
      dir,
      doneTemplate,
      "d",
      finished - 1,
      (n) => ctx.progress(`scale: ${n}/${finished} finished tasks written`),
    ),
    doneTemplate.line,
  ];
  const path = join(dir, INDEX_FILE_NAME);
  await Deno.writeTextFile(path, INDEX_HEADER + lines.join(""));
  // As a server leaves its index once it has rewritten it: a snapshot and a short file.
  const loaded = parseIndex(await Deno.readFile(path));
  if (typeof loaded === "string") throw new Error(`Fixture index: ${loaded}`);
  const file = new IndexFile(path, { fsync: false });
  await file.adopt(loaded);
  await file.rewrite(() => ({ index: loaded.index, removals: [] }));
  await file.close();
  return performance.now() - started;
}

/** Latencies of `LIST_SAMPLES` GETs of `path`, ms; checks each answers 200 with `expect` tasks. */
async function timeListing(origin: string, path: string, expect: number): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < LIST_SAMPLES; i++) {
    const started = performance.now();
    const page = await getJson<{ tasks: unknown[] }>(origin + path);
    samples.push(performance.now() - started);
    if (page.tasks.length !== expect) {
      throw new Error(`${path} listed ${page.tasks.length} tasks, expected ${expect}`);
    }
  }
  return samples;
}

/** Runs scenario 8. */
export async function scale(ctx: BenchContext): Promise<ScenarioResult> {
  const finished = ctx.quick ? 20_000 : 1_000_000;
  const paused = ctx.quick ? 500 : 10_000;
  const rounds = ctx.quick ? 1 : 3;
  const dir = await tempDir(ctx, "scale");
  ctx.progress(`scale: writing ${finished} finished and ${paused} paused tasks`);
  const fixtureMs = await makeFixture(ctx, dir, finished, paused);
  const emptyDir = await tempDir(ctx, "scale-empty");
  const ready: number[] = [];
  const readyEmpty: number[] = [];
  const rss: number[] = [];
  const rssEmpty: number[] = [];
  const rssAfterListing: number[] = [];
  const listing: Record<string, number[]> = {};
  const env = { AUTO_FETCH: "false", RETAIN_FINISHED: "forever" };
  for (let round = 0; round < rounds; round++) {
    for (const which of round % 2 === 0 ? ["empty", "full"] : ["full", "empty"]) {
      ctx.progress(`scale: round ${round + 1}/${rounds}, ${which} states dir`);
      const server = await startServer({
        statesDir: which === "full" ? dir : emptyDir,
        env,
        startTimeoutMs: 120_000,
      });
      try {
        const health = await getJson<Health>(`${server.origin}/health`);
        if (which === "empty") {
          readyEmpty.push(server.readyMs);
          rssEmpty.push((await server.rssBytes()) ?? NaN);
          continue;
        }
        if (health.tasks.paused !== paused || health.tasks.completed !== finished) {
          throw new Error(`Loaded ${JSON.stringify(health.tasks)}`);
        }
        ready.push(server.readyMs);
        rss.push((await server.rssBytes()) ?? NaN);
        // Oldest first, the pages start with the paused tasks (their template came first).
        const first = await getJson<{ nextCursor: string }>(`${server.origin}/status`);
        let cursor = first.nextCursor;
        for (let page = 0; page < 50; page++) {
          const next = await getJson<{ nextCursor: string }>(
            `${server.origin}/status?cursor=${cursor}`,
          );
          cursor = next.nextCursor;
        }
        const cases: [string, string, number][] = [
          ["newest first (finished: records read from disk), 100", "/status?order=newest", 100],
          ["status=completed, 100", "/status?status=completed&limit=100", 100],
          ["status=paused (records held in memory), 100", "/status?status=paused", 100],
          ["name=bench-paused, newest, 100", "/status?name=bench-paused&order=newest", 100],
          ["status=error (no match: scans the whole index)", "/status?status=error", 0],
          [`page 52 by cursor, 100`, `/status?cursor=${cursor}`, 100],
        ];
        for (const [label, path, expect] of cases) {
          (listing[label] ??= []).push(...await timeListing(server.origin, path, expect));
        }
        rssAfterListing.push((await server.rssBytes()) ?? NaN);
      } finally {
        await server.close({ graceMs: 10_000 });
      }
    }
  }
  const label = `${finished.toLocaleString("en")} finished + ${paused.toLocaleString("en")} paused`;
  const rows: Row[] = [
    {
      case: `process start to /health 200, ${label}`,
      unit: "ms",
      subject: summarize(ready),
      baselineLabel: "empty states dir",
      baseline: summarize(readyEmpty),
    },
    {
      case: `server RSS once serving, ${label}`,
      unit: "bytes",
      subject: summarize(rss),
      baselineLabel: "empty states dir",
      baseline: summarize(rssEmpty),
    },
    {
      case: `server RSS after the listings, ${label}`,
      unit: "bytes",
      subject: summarize(rssAfterListing),
    },
    ...Object.entries(listing).map(([name, samples]): Row => ({
      case: `GET /status ${name}`,
      unit: "ms",
      subject: summarize(samples),
    })),
  ];
  const listingP99 = Math.max(...Object.values(listing).map((s) => summarize(s).p99));
  return {
    id: 8,
    key: "scale",
    title: "Scale",
    rows,
    notes: [
      `The fixture (${(fixtureMs / 1000).toFixed(0)} s to write) copies one completed and one ` +
      "paused task the server made; paused tasks are loaded and held (AUTO_FETCH=false), " +
      `finished ones only indexed. ${rounds} starts of each kind, alternating; ` +
      `${LIST_SAMPLES} requests per listing case and start.`,
    ],
    metrics: {
      finished,
      paused,
      readyMedianMs: summarize(ready).median,
      rssMedianMiB: summarize(rss).median / MIB,
      rssAfterListingMiB: summarize(rssAfterListing).max / MIB,
      listingP99Ms: listingP99,
    },
    raw: {
      finished,
      paused,
      fixtureMs,
      ready,
      readyEmpty,
      rss,
      rssEmpty,
      rssAfterListing,
      listing,
    },
  };
}
