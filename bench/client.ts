/**
 * The plain HTTP calls the benchmarks time (no harness in between), and the shapes of the
 * answers they read.
 *
 * @module
 */

/** GETs `url` and parses the JSON answer; throws on a non-2xx status. */
export async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url);
  const body = await response.json();
  if (!response.ok) throw new Error(`GET ${url}: ${response.status} ${JSON.stringify(body)}`);
  return body as T;
}

/** POSTs `body` as JSON to `url` and parses the JSON answer; throws on a non-2xx status. */
export async function postJson<T>(url: string, body: unknown): Promise<T> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const answer = await response.json();
  if (!response.ok) {
    throw new Error(`POST ${url}: ${response.status} ${JSON.stringify(answer)}`);
  }
  return answer as T;
}

/** What `GET /health` answers. */
export interface Health {
  success: boolean;
  status: string;
  version: string;
  tasks: { running: number; paused: number; completed: number; error: number };
}

/** A task view as the HTTP API returns it (the fields the benchmark reads). */
export interface TaskViewLite {
  id: string;
  status: "running" | "paused" | "completed" | "error";
  pauseCount: number;
  createdAt: string;
  updatedAt: string;
  result?: unknown;
  error?: { name: string; message: string; kind: string };
}
