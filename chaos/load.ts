/**
 * Load: 200 tasks in flight at once for a bounded time, with `/status` and `/health`
 * polled throughout. No request may fail, every task must complete with its values, and
 * the server's RSS after the load round must not have grown much past its RSS after a
 * warm-up round (both measured once every task has ended).
 *
 * @module
 */
import {
  grepLogFile,
  mib,
  type ScenarioOptions,
  type ScenarioResult,
  type ServerProcess,
  sleep,
  startChaosServer,
} from "./support.ts";
import { startUpstream, valueFor } from "../testing/upstream.ts";

/** Tasks in flight at once. */
const CONCURRENCY = 200;
/** Largest accepted RSS growth between the warm-up round and the load round. */
export const MAX_RSS_GROWTH_BYTES = 100 * 1024 * 1024;
/** Time allowed to the tasks in flight to end after a round, ms. */
const DRAIN_TIMEOUT_MS = 120_000;

const CODE = `
const a = await (await fetch(input.base + "/v/load/" + input.tag + "/a")).json();
const b = await (await fetch(input.base + "/v/load/" + input.tag + "/b")).json();
const rest = await Promise.all(["c", "d"].map((k) =>
  fetch(input.base + "/v/load/" + input.tag + "/" + k).then((r) => r.json())));
[a.value, b.value, ...rest.map((body) => body.value)];`;

const FETCHES_PER_TASK = 4;

function expected(tag: string): number[] {
  return ["a", "b", "c", "d"].map((key) => valueFor(`/v/load/${tag}/${key}`));
}

interface TaskView {
  id: string;
  status: string;
  result?: unknown;
  error?: unknown;
}

/** Counters of one round. */
interface RoundStats {
  tasks: number;
  durationMs: number;
}

/** Runs the load scenario. */
export async function runLoad(options: ScenarioOptions): Promise<ScenarioResult> {
  const started = performance.now();
  const log = options.log ?? (() => {});
  const warmupTasks = options.short ? 200 : 1_000;
  const loadMs = options.short ? 6_000 : 45_000;
  const problems: string[] = [];
  const upstream = startUpstream({ minDelayMs: 5, maxDelayMs: 50 });
  let server: ServerProcess | null = null;
  try {
    server = await startChaosServer({ label: "load" });
    const srv = server;
    const requestsByStatus = new Map<number, number>();
    let requestFailures = 0;
    const count = (status: number) =>
      requestsByStatus.set(status, (requestsByStatus.get(status) ?? 0) + 1);
    const call = async (method: string, path: string, json?: unknown) => {
      try {
        const reply = await srv.request(path, { method: method, body: json, timeoutMs: 60_000 });
        count(reply.status);
        if (reply.status !== 200 && problems.length < 50) {
          problems.push(
            `${method} ${path.slice(0, 80)} answered ${reply.status}: ${reply.text.slice(0, 200)}`,
          );
        }
        return reply;
      } catch (error) {
        requestFailures++;
        if (problems.length < 50) {
          problems.push(`${method} ${path.slice(0, 80)} failed: ${String(error)}`);
        }
        return null;
      }
    };

    // Background polling of /status and /health, all through the run.
    let polling = true;
    let polls = 0;
    let peakRss = 0;
    const poller = (async () => {
      while (polling) {
        // The newest page, as a dashboard polls it (each finished task on it is read from disk).
        await Promise.all([call("GET", "/status?order=newest"), call("GET", "/health")]);
        polls++;
        peakRss = Math.max(peakRss, (await srv.rssBytes()) ?? 0);
        await sleep(250);
      }
    })();

    // Which tasks are still in flight: the running and paused lists, then a confirmation.
    const inFlight = new Set<string>();
    const tags = new Map<string, string>();
    let completed = 0;
    let wrong = 0;
    const waiters = new Map<string, () => void>();
    let collecting = true;
    const collector = (async () => {
      while (collecting) {
        const running = await call("GET", "/status?status=running&limit=10000");
        const paused = await call("GET", "/status?status=paused&limit=10000");
        const busy = new Set<string>();
        for (const reply of [running, paused]) {
          for (const task of (reply?.body as { tasks?: TaskView[] } | undefined)?.tasks ?? []) {
            busy.add(task.id);
          }
        }
        const candidates = [...inFlight].filter((id) => !busy.has(id));
        await Promise.all(candidates.map(async (id) => {
          const reply = await call("GET", `/status?id=${id}`);
          const task = (reply?.body as { task?: TaskView } | undefined)?.task;
          if (!task || task.status === "running" || task.status === "paused") return;
          inFlight.delete(id);
          if (task.status !== "completed") {
            problems.push(`task ${id} ended ${task.status}: ${JSON.stringify(task.error)}`);
          } else if (JSON.stringify(task.result) !== JSON.stringify(expected(tags.get(id)!))) {
            wrong++;
            problems.push(
              `task ${id}: result ${JSON.stringify(task.result)}, expected ${
                JSON.stringify(expected(tags.get(id)!))
              }`,
            );
          } else {
            completed++;
          }
          waiters.get(id)?.();
          waiters.delete(id);
        }));
        await sleep(100);
      }
    })();

    let serial = 0;
    /** One task from creation to its end. */
    const runTask = async (round: string) => {
      const tag = `${round}-${serial++}`;
      const id = `load-${tag}`;
      tags.set(id, tag);
      const ended = new Promise<void>((resolve) => waiters.set(id, resolve));
      inFlight.add(id);
      const reply = await call("POST", "/task", {
        id,
        code: CODE,
        input: { base: upstream.origin, tag },
      });
      if (!reply || reply.status !== 200) {
        inFlight.delete(id);
        waiters.delete(id);
        return;
      }
      await ended;
    };
    /** `CONCURRENCY` slots running tasks until `more()` says stop. */
    const round = async (name: string, more: (started: number) => boolean): Promise<RoundStats> => {
      const begun = performance.now();
      let startedTasks = 0;
      let timedOut = false;
      const slot = async () => {
        while (!timedOut && more(startedTasks)) {
          startedTasks++;
          await runTask(name);
        }
      };
      const slots = Promise.all(Array.from({ length: CONCURRENCY }, slot));
      const stop = new AbortController();
      await Promise.race([slots, sleep(DRAIN_TIMEOUT_MS + loadMs, stop.signal)]);
      stop.abort();
      if (inFlight.size > 0) {
        timedOut = true;
        problems.push(`${name}: ${inFlight.size} tasks never ended`);
        for (const waiter of waiters.values()) waiter();
        await slots;
      }
      return { tasks: startedTasks, durationMs: performance.now() - begun };
    };

    const warm = await round("warm", (n) => n < warmupTasks);
    await sleep(1_000);
    const rssWarm = await srv.rssBytes();
    log(
      `load: warm-up ${warm.tasks} tasks in ${(warm.durationMs / 1000).toFixed(1)} s, RSS ${
        mib(rssWarm)
      }`,
    );
    const loadEnd = Date.now() + loadMs;
    const load = await round("load", () => Date.now() < loadEnd);
    await sleep(1_000);
    const rssLoad = await srv.rssBytes();
    log(
      `load: ${load.tasks} tasks in ${(load.durationMs / 1000).toFixed(1)} s, RSS ${mib(rssLoad)}`,
    );

    collecting = false;
    polling = false;
    await Promise.all([collector, poller]);
    for (const waiter of waiters.values()) waiter();
    const growth = rssWarm !== null && rssLoad !== null ? rssLoad - rssWarm : null;
    if (growth === null) problems.push("cannot read the server's RSS from /proc");
    else if (growth > MAX_RSS_GROWTH_BYTES) {
      problems.push(
        `RSS grew by ${mib(growth)} from the warm-up to the end of the load (limit ${
          mib(MAX_RSS_GROWTH_BYTES)
        })`,
      );
    }
    const errors = await grepLogFile(srv.logPath, /"level":"error"/);
    for (const line of errors.slice(0, 5)) problems.push(`server error log: ${line.slice(0, 400)}`);
    const totalTasks = warm.tasks + load.tasks;
    return {
      name: "load",
      durationMs: performance.now() - started,
      figures: {
        "tasks in flight": CONCURRENCY,
        "warm-up tasks": warm.tasks,
        "load tasks": load.tasks,
        "load round, s": (load.durationMs / 1000).toFixed(1),
        "tasks/s under load": (load.tasks / (load.durationMs / 1000)).toFixed(1),
        "fetches/s under load": (load.tasks * FETCHES_PER_TASK / (load.durationMs / 1000)).toFixed(
          1,
        ),
        completed: `${completed} of ${totalTasks}`,
        "wrong results": wrong,
        "status/health polls": polls,
        "requests by status": [...requestsByStatus].sort().map(([s, n]) => `${s}: ${n}`).join(", "),
        "failed requests": requestFailures,
        "RSS after warm-up": mib(rssWarm),
        "RSS peak": mib(peakRss),
        "RSS after load": mib(rssLoad),
        "RSS growth": growth === null ? "n/a" : mib(growth),
      },
      problems,
      skipped: [],
    };
  } finally {
    await server?.close();
    await upstream.close();
  }
}
