// Calls to the server's API: JSON in and out with the bearer token the tab keeps, and the
// event stream read with fetch() (EventSource cannot send headers).
import { useEffect, useRef } from "./ui.js";

/** Where the tab keeps the bearer token (sessionStorage: gone with the tab). */
export const TOKEN_KEY = "flowstate-token";

/** Raised for an answer the UI shows as an error. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

let onUnauthorized = () => {};

/** Sets what a 401 answer does (the shell asks for the token). */
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** Calls the API; JSON in and out. Throws an ApiError for an unsuccessful answer. */
export async function api(path, { method = "GET", body } = {}) {
  const headers = authHeaders();
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data;
  try {
    data = await res.json();
  } catch {
    data = { success: false, error: `HTTP ${res.status}` };
  }
  if (res.status === 401) onUnauthorized();
  if (!res.ok || data.success === false) {
    throw new ApiError(res.status, data.error ?? `HTTP ${res.status}`);
  }
  return data;
}

/**
 * Reads `GET /events` (with `query`) and calls `onEvent` with each transition; reconnects
 * after `retry` ms with Last-Event-ID, until `signal` aborts.
 */
async function streamEvents(query, onEvent, signal) {
  let lastId = null;
  let retry = 1000;
  while (!signal.aborted) {
    try {
      const headers = authHeaders();
      if (lastId) headers["last-event-id"] = lastId;
      const res = await fetch(`/events${query}`, { headers, signal });
      if (res.status === 401) {
        onUnauthorized();
        return;
      }
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n?/g, "\n");
        for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = { data: [] };
          for (const line of block.split("\n")) {
            if (line === "" || line.startsWith(":")) continue;
            const colon = line.indexOf(":");
            const field = colon < 0 ? line : line.slice(0, colon);
            const val = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
            if (field === "data") event.data.push(val);
            else if (field === "id") lastId = val;
            else if (field === "retry" && /^[0-9]+$/.test(val)) retry = Number(val);
          }
          if (event.data.length > 0) {
            try {
              onEvent(JSON.parse(event.data.join("\n")));
            } catch {
              // Not a transition: ignore it.
            }
          }
        }
      }
    } catch {
      if (signal.aborted) return;
    }
    await new Promise((resolve) => setTimeout(resolve, retry));
  }
}

/** Subscribes to the event stream for the component's life. */
export function useEvents(query, onEvent) {
  const handler = useRef(onEvent);
  handler.current = onEvent;
  useEffect(() => {
    const controller = new AbortController();
    streamEvents(query, (event) => handler.current(event), controller.signal);
    return () => controller.abort();
  }, [query]);
}
