/**
 * Hostile upstreams: responses that never start, never end, drip, lie about their length,
 * are gigabytes long (streamed by the upstream, never buffered), are invalid JSON with a
 * JSON content type, close mid-body, or are not HTTP. With `FETCH_TIMEOUT_MS=1500` and
 * `FETCH_MAX_BYTES=1MiB`, each task must end with a clear outcome (the guest sees a
 * rejected fetch with a reason, or `json()` throws a `SyntaxError` it can catch) and the
 * server stays up. A body that fails after its headers came fails at `fetch()` when it fails
 * within `FETCH_BODY_PART_MS` of them, else in `json()` (the response reached the task in
 * parts): either is the clear outcome for those routes.
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

const FETCH_TIMEOUT_MS = 1_500;
const FETCH_MAX_BYTES = 1024 * 1024;
/** Slack on top of the fetch time limit for the whole task (create, dispatch, resume). */
const OUTCOME_SLACK_MS = 8_000;
/** Most bytes the upstream may have written for one huge response before the server hung up. */
const MAX_STREAMED_PER_RESPONSE = 64 * 1024 * 1024;

/** What the guest must see for one route. */
interface Expectation {
  /** Where it fails; `body`: at `fetch()` or in `json()`, whichever the timing gives. */
  stage: "fetch" | "json" | "body" | "ok";
  name?: string;
  message?: RegExp;
}

const TIMED_OUT = /timed out after 1500 ms/;
const TOO_LARGE = /exceeds 1048576 bytes/;
const BROKEN = /fetch failed: .*failed/;

/** Every hostile route with what the guest must see. */
export const ROUTES: Record<string, Expectation> = {
  "never-start": { stage: "fetch", name: "TypeError", message: TIMED_OUT },
  "never-end": { stage: "body", name: "TypeError", message: TIMED_OUT },
  "slow-drip": { stage: "body", name: "TypeError", message: TIMED_OUT },
  "lie-longer": { stage: "body", name: "TypeError", message: BROKEN },
  "lie-shorter": { stage: "json", name: "SyntaxError" },
  "huge-declared": { stage: "fetch", name: "TypeError", message: TOO_LARGE },
  "huge-chunked": { stage: "body", name: "TypeError", message: TOO_LARGE },
  "huge-eof": { stage: "body", name: "TypeError", message: TOO_LARGE },
  "invalid-json": { stage: "json", name: "SyntaxError" },
  "close-mid-body": { stage: "body", name: "TypeError", message: BROKEN },
  "reset": { stage: "fetch", name: "TypeError", message: BROKEN },
  "garbage": { stage: "fetch", name: "TypeError", message: BROKEN },
};

/** Guest code that fetches `url` and reports what it saw, catching everything. */
function catchingCode(url: string): string {
  return `
try {
  const response = await fetch(${JSON.stringify(url)});
  try {
    ({ stage: "ok", status: response.status, json: await response.json() });
  } catch (error) {
    ({ stage: "json", name: error.name, message: error.message });
  }
} catch (error) {
  ({ stage: "fetch", name: error.name, message: error.message });
}`;
}

interface Outcome {
  stage: string;
  name?: string;
  message?: string;
  json?: unknown;
}

interface TaskView {
  id: string;
  status: string;
  result?: Outcome;
  error?: { name: string; message: string; kind: string };
}

/** Runs the hostile upstreams scenario. */
export async function runHostileUpstreams(options: ScenarioOptions): Promise<ScenarioResult> {
  const started = performance.now();
  const log = options.log ?? (() => {});
  const rounds = options.short ? 1 : 4;
  const problems: string[] = [];
  const upstream = startUpstream({ minDelayMs: 5, maxDelayMs: 50 });
  let server: ServerProcess | null = null;
  try {
    server = await startChaosServer({
      label: "upstreams",
      env: { FETCH_TIMEOUT_MS: String(FETCH_TIMEOUT_MS), FETCH_MAX_BYTES: String(FETCH_MAX_BYTES) },
    });
    const srv = server;
    const rssBefore = await srv.rssBytes();
    let tasks = 0;
    let slowest = 0;
    const seen = new Map<string, string>();
    for (let round = 0; round < rounds; round++) {
      const jobs: Promise<void>[] = [];
      const run = async (label: string, code: string, check: (view: TaskView) => string | null) => {
        tasks++;
        const id = `up-${round}-${label.replace(/[^A-Za-z0-9]+/g, "-")}`;
        const begun = performance.now();
        const reply = await srv.request("/task", { method: "POST", body: { id, code } });
        if (reply.status !== 200) {
          problems.push(`${label}: POST /task answered ${reply.status} ${reply.text}`);
          return;
        }
        const deadline = Date.now() + FETCH_TIMEOUT_MS + OUTCOME_SLACK_MS;
        let view = (reply.body as { task: TaskView }).task;
        while ((view.status === "paused" || view.status === "running") && Date.now() < deadline) {
          await sleep(100);
          const status = await srv.request(`/status?id=${id}`);
          view = (status.body as { task: TaskView }).task;
        }
        const took = performance.now() - begun;
        slowest = Math.max(slowest, took);
        const problem = view.status === "paused" || view.status === "running"
          ? `still ${view.status} after ${Math.round(took)} ms`
          : check(view);
        if (problem) problems.push(`${label}: ${problem}`);
        seen.set(label, JSON.stringify(view.result ?? view.error));
      };
      for (const [route, expected] of Object.entries(ROUTES)) {
        jobs.push(run(route, catchingCode(upstream.url(`/${route}`)), (view) => {
          if (view.status !== "completed") {
            return `ended ${view.status}: ${JSON.stringify(view.error)}, expected a caught error`;
          }
          const outcome = view.result!;
          const stageSeen = expected.stage === "body" && outcome.stage !== "ok"
            ? "body"
            : outcome.stage;
          if (stageSeen !== expected.stage || outcome.name !== expected.name) {
            return `guest saw ${
              JSON.stringify(outcome)
            }, expected ${expected.stage} ${expected.name}`;
          }
          if (!outcome.message) return `guest saw an empty message: ${JSON.stringify(outcome)}`;
          if (expected.message && !expected.message.test(outcome.message)) {
            return `guest saw "${outcome.message}", expected ${expected.message}`;
          }
          return null;
        }));
      }
      // A fetch the guest does not catch: the task ends in error with the reason.
      jobs.push(
        run(
          "uncaught never-start",
          `await fetch(${JSON.stringify(upstream.url("/never-start"))});`,
          (view) =>
            view.status === "error" && view.error?.name === "TypeError" &&
              TIMED_OUT.test(view.error.message)
              ? null
              : `ended ${view.status} ${JSON.stringify(view.error)}, expected a TypeError error`,
        ),
      );
      // A good upstream next to the hostile ones still answers.
      const path = `/v/upstreams/${round}`;
      jobs.push(run("healthy", catchingCode(upstream.url(path)), (view) => {
        const json = view.result?.json as { value?: number } | undefined;
        return view.status === "completed" && json?.value === valueFor(path)
          ? null
          : `ended ${view.status} ${JSON.stringify(view.result ?? view.error)}, expected value ${
            valueFor(path)
          }`;
      }));
      await Promise.all(jobs);
      log(`hostile upstreams: round ${round + 1}/${rounds} done`);
    }
    const health = await srv.request("/health");
    if (health.status !== 200) problems.push(`/health answered ${health.status} after the run`);
    const rssAfter = await srv.rssBytes();
    let streamedMax = 0;
    let streamedTotal = 0;
    for (const [route, bytes] of upstream.streamed) {
      const perResponse = bytes / rounds;
      streamedTotal += bytes;
      streamedMax = Math.max(streamedMax, perResponse);
      if (perResponse > MAX_STREAMED_PER_RESPONSE) {
        problems.push(`${route}: ${bytes} bytes were written before the server hung up`);
      }
    }
    const errors = await grepLogFile(srv.logPath, /"level":"error"/);
    for (const line of errors.slice(0, 5)) problems.push(`server error log: ${line}`);
    return {
      name: "hostile upstreams",
      durationMs: performance.now() - started,
      figures: {
        tasks,
        "hostile routes": Object.keys(ROUTES).length,
        "slowest outcome, ms": Math.round(slowest),
        "bytes streamed by huge routes": mib(streamedTotal),
        "most written per huge response": mib(streamedMax),
        "RSS before": mib(rssBefore),
        "RSS after": mib(rssAfter),
      },
      problems,
      skipped: [],
    };
  } finally {
    await server?.close();
    await upstream.close();
  }
}
