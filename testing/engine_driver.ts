/**
 * Shared helpers of the engine tests: drive an execution to completion, answering every
 * request from a function, either on one live {@link FetchVM} or cold, through JSON and a
 * fresh VM at every pause.
 *
 * @module
 */
import {
  type EngineOptions,
  executeCode,
  ExecutionError,
  type ExecutionErrorKind,
  type ExecutionResult,
  type FetchRequest,
  type FetchResponse,
  FetchVM,
  type LogEntry,
  resumeExecution,
  type Variant,
  type VMState,
} from "../lib/mod.ts";

/** Both builds; core behaviour tests register one `Deno.test` per entry. */
export const VARIANTS: readonly Variant[] = ["asyncify", "sync"];

/** A response without its id; the driver fills the id of the request it answers. */
export type Answer = Omit<FetchResponse, "id">;

/** Answers one request; `index` counts the requests answered so far, from 0. */
export type Responder = (request: FetchRequest, index: number) => Answer;

/** Which pending request the driver answers at each pause. */
export type Pick = "first" | "last";

export interface DriveOptions extends EngineOptions {
  /** Which pending request to answer at each pause. Default `"first"`. */
  pick?: Pick;
  /** Most pauses before the driver gives up (a runaway script). Default 1,000. */
  maxPauses?: number;
}

/** What a driven execution ended with. */
export interface Drive {
  /** The final (completed) result. */
  final: ExecutionResult;
  /** `final.result`. */
  result: unknown;
  /** Every request in the order the guest made it (first appearance among the pending). */
  requests: FetchRequest[];
  /** Requests in the order the driver answered them. */
  answered: FetchRequest[];
  /** Every paused result, in order. */
  pauses: ExecutionResult[];
  /** Each paused state as JSON text, taken at once (later mutation cannot change it). */
  pausedStates: string[];
  /** Every segment's `logs`, concatenated. */
  logs: LogEntry[];
}

/** A successful 200 response with `data` (JSON value or text). */
export function ok(data: unknown, extra: Partial<Answer> = {}): Answer {
  return { success: true, status: 200, statusText: "OK", data, ...extra };
}

/** The response to fetch `id`: status 200 with `data` as its JSON body. */
export function jsonResponse(id: string, data: unknown): FetchResponse {
  return {
    id,
    success: true,
    status: 200,
    headers: { "content-type": "application/json" },
    data,
    body: JSON.stringify(data),
  };
}

/** A request that failed before any response (network error). */
export function failed(error: string): Answer {
  return { success: false, error };
}

/** `(url, method, body)` of each request: what must repeat identically in a replay. */
export function requestShape(
  requests: readonly FetchRequest[],
): { url: string; method: string | undefined; body: string | undefined }[] {
  return requests.map((r) => ({ url: r.url, method: r.options.method, body: r.options.body }));
}

/** The requests recorded in a state's journal, in order. */
export function journalRequests(state: VMState): FetchRequest[] {
  return state.journal.flatMap((entry) => entry.type === "request" ? [entry.request] : []);
}

/** `JSON.parse(JSON.stringify(value))`: what a state looks like after a trip to disk. */
export function viaJson<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** One live VM: `vm.execute(code)`, then `vm.resume(result.state, response)` at each pause. */
export async function driveLive(
  code: string,
  respond: Responder,
  options: DriveOptions = {},
): Promise<Drive> {
  using vm = new FetchVM(options);
  return await drive(await vm.execute(code), respond, options, (state, response) => {
    return vm.resume(state, response);
  });
}

/**
 * Cold at every pause: `executeCode(code)`, then at each pause the state goes through
 * `JSON.stringify`/`JSON.parse` and `resumeExecution` resumes it in a fresh VM.
 */
export async function driveCold(
  code: string,
  respond: Responder,
  options: DriveOptions = {},
): Promise<Drive> {
  return await drive(await executeCode(code, options), respond, options, (state, response) => {
    return resumeExecution(viaJson(state), response, options);
  });
}

/** Continues a paused `first` result cold (JSON + fresh VM at every pause) to completion. */
export async function continueCold(
  first: ExecutionResult,
  respond: Responder,
  options: DriveOptions = {},
  answeredBefore = 0,
): Promise<Drive> {
  return await drive(first, respond, options, (state, response) => {
    return resumeExecution(viaJson(state), response, options);
  }, answeredBefore);
}

async function drive(
  first: ExecutionResult,
  respond: Responder,
  options: DriveOptions,
  resume: (state: VMState, response: FetchResponse) => Promise<ExecutionResult>,
  answeredBefore = 0,
): Promise<Drive> {
  const maxPauses = options.maxPauses ?? 1_000;
  const seen = new Set<string>();
  const requests: FetchRequest[] = [];
  const answered: FetchRequest[] = [];
  const pauses: ExecutionResult[] = [];
  const pausedStates: string[] = [];
  const logs: LogEntry[] = [];
  let current = first;
  for (;;) {
    logs.push(...current.logs);
    if (current.type === "completed") break;
    if (pauses.length >= maxPauses) {
      throw new Error(`The script paused more than ${maxPauses} times`);
    }
    pauses.push(current);
    const state = current.state;
    const pending = current.fetchRequests ?? [];
    if (!state || pending.length === 0) throw new Error("A paused result has no state or request");
    pausedStates.push(JSON.stringify(state));
    for (const request of pending) {
      if (!seen.has(request.id)) {
        seen.add(request.id);
        requests.push(request);
      }
    }
    const request = options.pick === "last" ? pending[pending.length - 1]! : pending[0]!;
    const answer = respond(request, answeredBefore + answered.length);
    answered.push(request);
    current = await resume(state, { ...answer, id: request.id });
  }
  return { final: current, result: current.result, requests, answered, pauses, pausedStates, logs };
}

/**
 * Awaits `promise`, expecting it to reject with an {@link ExecutionError} of `kind`;
 * returns the error for further checks.
 */
export async function rejectsWithKind(
  promise: Promise<unknown>,
  kind: ExecutionErrorKind,
): Promise<ExecutionError> {
  let outcome: unknown;
  try {
    outcome = await promise;
  } catch (error) {
    if (!(error instanceof ExecutionError)) {
      throw new Error(`Expected an ExecutionError of kind "${kind}", got ${String(error)}`, {
        cause: error,
      });
    }
    if (error.kind !== kind) {
      throw new Error(
        `Expected an ExecutionError of kind "${kind}", got kind "${error.kind}": ${error.message}`,
        { cause: error },
      );
    }
    return error;
  }
  throw new Error(
    `Expected an ExecutionError of kind "${kind}", but it resolved: ${JSON.stringify(outcome)}`,
  );
}
