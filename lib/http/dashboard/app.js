// The FlowState dashboard: Preact components written with htm (no build step). Routes are
// hashes: #/ (tasks), #/task/<id>, #/new. Every API call carries the bearer token kept in
// sessionStorage; the event stream is read with fetch() (EventSource cannot send headers).
//
// Preact with hooks and htm, the standalone bundle of the `htm` package, is served by the
// server at /ui/preact.js (a URL, not a file beside this one, hence the dynamic import).
const PREACT_URL = "/ui/preact.js";
const { html, render, useCallback, useEffect, useRef, useState } = await import(PREACT_URL);

const TOKEN_KEY = "flowstate-token";
const STATUSES = ["running", "paused", "completed", "error", "cancelled"];
const PAGE_SIZE = 50;

/** Raised for an answer the UI shows as an error. */
class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

let onUnauthorized = () => {};

function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** Calls the API; JSON in and out. Throws an ApiError for an unsuccessful answer. */
async function api(path, { method = "GET", body } = {}) {
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
function useEvents(query, onEvent) {
  const handler = useRef(onEvent);
  handler.current = onEvent;
  useEffect(() => {
    const controller = new AbortController();
    streamEvents(query, (event) => handler.current(event), controller.signal);
    return () => controller.abort();
  }, [query]);
}

/** "3 s ago", "in 2 min". */
function relative(iso, now = Date.now()) {
  if (!iso) return "";
  const ms = now - new Date(iso).getTime();
  const abs = Math.abs(ms);
  const units = [[86_400_000, "d"], [3_600_000, "h"], [60_000, "min"], [1000, "s"]];
  for (const [size, unit] of units) {
    if (abs >= size) {
      const n = Math.floor(abs / size);
      return ms >= 0 ? `${n} ${unit} ago` : `in ${n} ${unit}`;
    }
  }
  return "just now";
}

/** A time, shown relative with the absolute time as its title (and the reverse on hover). */
function Time({ at }) {
  if (!at) return null;
  const date = new Date(at);
  return html`<time datetime=${date.toISOString()} title=${date.toISOString()}>${
    relative(at)
  } · ${date.toLocaleTimeString()}</time>`;
}

function Status({ status }) {
  return html`<span class=${`status status-${status}`}>${status}</span>`;
}

/** Pretty JSON when `text` parses, else the text. */
function pretty(text) {
  if (typeof text !== "string") return JSON.stringify(text, null, 2);
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

function waitsFor(task) {
  const pending = task.fetchRequests ?? (task.fetchRequest ? [task.fetchRequest] : []);
  if (pending.length === 0) return "";
  return pending.map((r) => `${r.method} ${r.url}`).join(", ");
}

function navigate(hash) {
  location.hash = hash;
}

// ---------------------------------------------------------------------------------------
// Tasks list

function TaskList() {
  const [tasks, setTasks] = useState(null);
  const [error, setError] = useState(null);
  const [status, setStatus] = useState("");
  const [name, setName] = useState("");
  const [search, setSearch] = useState("");
  const [page, setPage] = useState(0);
  const [, tick] = useState(0);

  useEffect(() => {
    api("/status").then((data) => setTasks(data.tasks), (e) => setError(e.message));
    const clock = setInterval(() => tick((n) => n + 1), 10_000);
    return () => clearInterval(clock);
  }, []);

  useEvents("", (event) => {
    setTasks((list) => {
      if (!list) return list;
      const next = list.filter((t) => t.id !== event.taskId);
      if (event.type !== "deleted") next.push(event.task);
      return next;
    });
  });

  if (error) return html`<div class="banner bad" role="alert">${error}</div>`;
  if (!tasks) return html`<p class="muted">Loading tasks…</p>`;

  const needle = search.trim();
  const shown = tasks
    .filter((t) => !status || t.status === status)
    .filter((t) => !name || t.name.toLowerCase().includes(name.toLowerCase()))
    .filter((t) => !needle || t.id.includes(needle))
    .sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id));
  const pages = Math.max(1, Math.ceil(shown.length / PAGE_SIZE));
  const at = Math.min(page, pages - 1);
  const slice = shown.slice(at * PAGE_SIZE, (at + 1) * PAGE_SIZE);
  const counts = Object.fromEntries(STATUSES.map((s) => [s, 0]));
  for (const t of tasks) counts[t.status]++;

  return html`
    <h1>Tasks <span class="muted">(${tasks.length})</span></h1>
    <div class="filters" role="search">
      <label>Status
        <select value=${status} onChange=${(e) => (setStatus(e.target.value), setPage(0))}>
          <option value="">all</option>
          ${STATUSES.map((s) => html`<option value=${s}>${s} (${counts[s]})</option>`)}
        </select>
      </label>
      <label>Name
        <input type="search" value=${name} placeholder="contains…"
          onInput=${(e) => (setName(e.target.value), setPage(0))} />
      </label>
      <label>Task id
        <input type="search" name="id-search" value=${search} placeholder="id…"
          onInput=${(e) => (setSearch(e.target.value), setPage(0))}
          onKeyDown=${(e) => {
            if (e.key === "Enter" && tasks.some((t) => t.id === needle)) {
              navigate(`#/task/${needle}`);
            }
          }} />
      </label>
      <a href="#/new">New task</a>
    </div>
    <table aria-label="Tasks">
      <thead>
        <tr>
          <th>Status</th>
          <th>Id</th>
          <th>Name</th>
          <th>Pauses</th>
          <th>Created</th>
          <th>Waits for</th>
        </tr>
      </thead>
      <tbody>
        ${slice.map((t) =>
          html`
            <tr key=${t.id} data-task=${t.id} data-status=${t.status}>
              <td>
                <${Status} status=${t.status} />
              </td>
              <td class="mono"><a href=${`#/task/${encodeURIComponent(t.id)}`}>${t.id}</a></td>
              <td>${t.name}</td>
              <td>${t.pauseCount}</td>
              <td>
                <${Time} at=${t.createdAt} />
              </td>
              <td class="mono">${waitsFor(t)}</td>
            </tr>
          `
        )}
      </tbody>
    </table>
    ${shown.length === 0 ? html`<p class="muted">No task matches.</p>` : null}
    <div class="pager">
      <button disabled=${at === 0} onClick=${() => setPage(at - 1)}>Newer</button>
      <span>Page ${at + 1} of ${pages} · ${shown.length} shown</span>
      <button disabled=${at >= pages - 1} onClick=${() => setPage(at + 1)}>Older</button>
    </div>
  `;
}

// ---------------------------------------------------------------------------------------
// A task

/** The line of the task's code its error's guest stack points at first (`task.js:3`). */
function errorLine(stack) {
  const match = /\btask\.js:(\d+)/.exec(stack ?? "");
  return match ? Number(match[1]) : null;
}

function Code({ code, mark }) {
  const lines = code.split("\n");
  return html`<pre class="code" aria-label="Code">${
    lines.map((line, i) =>
      html`<span class=${i + 1 === mark ? "ln marked" : "ln"} aria-current=${
        i + 1 === mark ? "true" : undefined
      }>${line || " "}${"\n"}</span>`
    )
  }</pre>`;
}

function Headers({ headers }) {
  const entries = Object.entries(headers ?? {});
  if (entries.length === 0) return html`<p class="muted">No headers</p>`;
  return html`<pre>${entries.map(([k, v]) => `${k}: ${v}`).join("\n")}</pre>`;
}

/** One fetch of the timeline: summary line, details loaded when opened, fork form. */
function FetchItem({ task, fetch, onForked }) {
  const [detail, setDetail] = useState(null);
  const [error, setError] = useState(null);
  const [forking, setForking] = useState(false);
  const load = useCallback(() => {
    if (detail) return;
    api(`/status?id=${encodeURIComponent(task.id)}&fetch=${fetch.index}`).then(
      (d) => setDetail(d.fetch),
      (e) => setError(e.message),
    );
  }, [detail, task.id, fetch.index]);
  const duration = fetch.respondedAt
    ? `${new Date(fetch.respondedAt) - new Date(fetch.requestedAt)} ms`
    : "pending";
  const status = fetch.status ?? (fetch.error ? "failed" : "…");
  return html`
    <li class="kind-fetch" data-fetch=${fetch.index}>
      <details onToggle=${(e) => e.target.open && load()}>
          <summary>
            <${Time} at=${fetch.requestedAt} />
            <strong>fetch #${fetch.index}</strong>${" "}
            <span class="mono">${fetch.method} ${fetch.url}</span> → <strong>${status}</strong>
            <span class="muted"> (${duration}${fetch.size === undefined
              ? ""
              : `, ${fetch.size} B`})</span>
          </summary>
          ${fetch.error ? html`<div class="banner bad">${fetch.error}</div>` : null}
          ${error ? html`<div class="banner bad" role="alert">${error}</div>` : null}
          ${detail
            ? html`
              <div class="grid2">
                <div>
                          <h3>Request</h3>
                          <${Headers} headers=${detail.request.headers} />
                          ${detail.request.body !== undefined
                            ? html`<pre class="request-body">${pretty(detail.request.body)}</pre>`
                            : null}
                          ${detail.request.bodyBase64
                            ? html`<pre>base64: ${detail.request.bodyBase64}</pre>`
                            : null}
                        </div>
                <div>
                          <h3>Response ${detail.status ?? ""} ${detail.statusText ?? ""}</h3>
                          <${Headers} headers=${detail.headers} />
                          ${detail.body !== undefined
                            ? html`<pre class="response-body">${pretty(detail.body)}</pre>`
                            : null}
                          ${detail.bodyBase64
                            ? html`<pre>base64: ${detail.bodyBase64}</pre>`
                            : null}
                        </div>
              </div>
                      ${fetch.status !== null && !forking
                        ? html`<button onClick=${() =>
                          setForking(true)}>Fork from here with an edited response…</button>`
                        : null}
                      ${forking
                        ? html`
                          <${ForkForm} task=${task} detail=${detail} onDone=${onForked}
                            onCancel=${() => setForking(false)} />
                        `
                        : null}
            `
            : error
            ? null
            : html`<p class="muted">Loading…</p>`}
        </details>
    </li>
  `;
}

/** Edits the response of one fetch and forks the task from it. */
function ForkForm({ task, detail, onDone, onCancel }) {
  const [status, setStatus] = useState(String(detail.status ?? 200));
  const [headers, setHeaders] = useState(JSON.stringify(detail.headers ?? {}, null, 2));
  const [body, setBody] = useState(detail.body !== undefined ? pretty(detail.body) : "");
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    try {
      const response = {
        success: true,
        status: Number(status),
        headers: JSON.parse(headers),
        body,
      };
      const data = await api("/fork", {
        method: "POST",
        body: {
          taskId: task.id,
          atFetch: detail.index + 1,
          responses: { [detail.index]: response },
        },
      });
      onDone(data.task.id);
    } catch (err) {
      setError(err.message);
    }
  };
  return html`<form class="box fork-form" onSubmit=${submit} aria-label="Fork with an edited response">
    <p>A new task replays fetches 0–${detail.index} of this one, fetch #${detail.index} answered as below, then runs live.</p>
    <label>Status <input name="status" value=${status} onInput=${(e) =>
    setStatus(e.target.value)} /></label>
    <label>Headers (JSON) <textarea name="headers" rows="3" onInput=${(e) =>
    setHeaders(e.target.value)}>${headers}</textarea></label>
    <label>Body <textarea name="body" rows="6" onInput=${(e) =>
    setBody(e.target.value)}>${body}</textarea></label>
    ${error ? html`<div class="banner bad" role="alert">${error}</div>` : null}
    <div class="actions">
      <button class="primary" type="submit">Fork</button>
      <button type="button" onClick=${onCancel}>Cancel</button>
    </div>
  </form>`;
}

/** Answers a request the task waits for by hand (`POST /call`). */
function AnswerForm({ task, request, onDone }) {
  const [status, setStatus] = useState("200");
  const [headers, setHeaders] = useState('{ "content-type": "application/json" }');
  const [body, setBody] = useState("{}");
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    try {
      const fetchResponse = {
        id: request.id,
        success: true,
        status: Number(status),
        headers: JSON.parse(headers),
        body,
      };
      await api("/call", { method: "POST", body: { taskId: task.id, fetchResponse } });
      onDone();
    } catch (err) {
      setError(err.message);
    }
  };
  return html`<form class="box answer-form" onSubmit=${submit} aria-label=${`Answer ${request.id}`}>
    <p>Waiting for <span class="mono">${request.method} ${request.url}</span> (${request.id})</p>
    <label>Status <input name="status" value=${status} onInput=${(e) =>
    setStatus(e.target.value)} /></label>
    <label>Headers (JSON) <textarea name="headers" rows="2" onInput=${(e) =>
    setHeaders(e.target.value)}>${headers}</textarea></label>
    <label>Body <textarea name="body" rows="4" onInput=${(e) =>
    setBody(e.target.value)}>${body}</textarea></label>
    ${error ? html`<div class="banner bad" role="alert">${error}</div>` : null}
    <div class="actions"><button class="primary" type="submit">Send response</button></div>
  </form>`;
}

/** Sends a signal a task waits for (`POST /signal`). */
function SignalForm({ task, name, onDone }) {
  const [data, setData] = useState("");
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    try {
      const body = { taskId: task.id, name };
      if (data.trim() !== "") body.data = JSON.parse(data);
      await api("/signal", { method: "POST", body });
      onDone();
    } catch (err) {
      setError(err instanceof SyntaxError ? `Data is not JSON: ${err.message}` : err.message);
    }
  };
  return html`<form class="box signal-form" onSubmit=${submit} aria-label=${`Signal ${name}`}>
    <p>Waiting for the signal <span class="mono">${name}</span></p>
    <label>Data (JSON, optional) <textarea name="data" rows="3" onInput=${(e) =>
    setData(e.target.value)}>${data}</textarea></label>
    ${error ? html`<div class="banner bad" role="alert">${error}</div>` : null}
    <div class="actions"><button class="primary" type="submit">Send signal</button></div>
  </form>`;
}

/** The journal as one list in time order: fetches and console lines. */
function Timeline({ task, onForked }) {
  const items = [
    { at: task.createdAt, kind: "created" },
    ...task.fetches.map((f) => ({ at: f.requestedAt, kind: "fetch", fetch: f })),
    ...task.logs.map((l, i) => ({ at: new Date(l.time).toISOString(), kind: "log", log: l, i })),
  ];
  if (task.status === "completed" || task.status === "error" || task.status === "cancelled") {
    items.push({ at: task.updatedAt, kind: task.status === "error" ? "error" : "end" });
  }
  const order = { created: 0, fetch: 1, log: 2, end: 3, error: 3 };
  items.sort((a, b) => a.at.localeCompare(b.at) || order[a.kind] - order[b.kind]);
  return html`<ol class="timeline" aria-label="Timeline">
    ${
    items.map((item) => {
      switch (item.kind) {
        case "fetch":
          return html`
            <${FetchItem} key=${`f${item.fetch.index}`} task=${task} fetch=${item.fetch}
              onForked=${onForked} />
          `;
        case "log":
          return html`<li class="kind-log" key=${`l${item.i}`}>
            <${Time} at=${item.at} /><span class=${`mono log-${item.log.level}`}>console.${item.log.level}: ${item.log.message}</span>
          </li>`;
        case "created":
          return html`<li key="created"><${Time} at=${item.at} />created${
            task.forkedFrom
              ? html`
                as a fork of <a href=${`#/task/${task.forkedFrom.taskId}`}>${task.forkedFrom
                  .taskId}</a> at fetch ${task.forkedFrom.atFetch}
              `
              : ""
          }${task.retries ? ` · retried ${task.retries}×` : ""}</li>`;
        default:
          return html`<li class=${item.kind === "error" ? "kind-error" : ""} key="end">
            <${Time} at=${item.at} />${task.status}${task.error ? `: ${task.error.message}` : ""}
          </li>`;
      }
    })
  }
  </ol>`;
}

function TaskPage({ id }) {
  const [task, setTask] = useState(null);
  const [source, setSource] = useState(null);
  const [error, setError] = useState(null);
  const [notice, setNotice] = useState(null);
  const [gone, setGone] = useState(false);

  const reload = useCallback(() => {
    const q = encodeURIComponent(id);
    api(`/status?id=${q}`).then(
      (d) => (setTask(d.task), setError(null)),
      (e) => setError(e.message),
    );
    api(`/source?id=${q}`).then((d) => setSource(d.source), () => {});
  }, [id]);
  useEffect(() => {
    setTask(null);
    setSource(null);
    setGone(false);
    reload();
  }, [id]);
  useEvents(`?id=${encodeURIComponent(id)}`, (event) => {
    if (event.type === "deleted") setGone(true);
    else reload();
  });

  const act = async (label, path, body, method = "POST") => {
    setNotice(null);
    try {
      await api(path, { method, body });
      setNotice(`${label}: done`);
      if (method === "DELETE") setGone(true);
      else reload();
    } catch (err) {
      setNotice(`${label}: ${err.message}`);
    }
  };

  if (gone) {
    return html`
      <h1>Task ${id}</h1>
      <p>This task was deleted. <a href="#/">Back to the tasks</a></p>
    `;
  }
  if (error && !task) return html`<div class="banner bad" role="alert">${error}</div>`;
  if (!task) return html`<p class="muted">Loading ${id}…</p>`;

  const finished = ["completed", "error", "cancelled"].includes(task.status);
  const pending = task.fetchRequests ?? (task.fetchRequest ? [task.fetchRequest] : []);
  const last = task.fetches.at(-1);
  const onForked = (forkId) => navigate(`#/task/${encodeURIComponent(forkId)}`);
  return html`
    <h1>${task.name || task.id} <${Status} status=${task.status} /></h1>
    <dl class="facts">
      <dt>Id</dt><dd class="mono" data-field="id">${task.id}</dd>
      <dt>Created</dt><dd><${Time} at=${task.createdAt} /></dd>
      <dt>Updated</dt><dd><${Time} at=${task.updatedAt} /></dd>
      <dt>Pauses</dt><dd>${task.pauseCount}</dd>
      <dt>Fetches</dt><dd>${task.fetches.length}${last?.respondedAt
        ? html`
          · last answered <${Time} at=${last.respondedAt} />
        `
        : ""}</dd>
      ${source?.cpuMs !== undefined
        ? html`
          <dt>CPU</dt>
          <dd>${Math.round(source.cpuMs)} ms</dd>
        `
        : null}
      ${task.retries
        ? html`
          <dt>Retries</dt>
          <dd>${task.retries}</dd>
        `
        : null}
      ${task.callbackUrl
        ? html`
          <dt>Webhook</dt>
          <dd class="mono">${task.callbackUrl}</dd>
        `
        : null}
    </dl>
    <div class="actions" role="toolbar" aria-label="Actions">
      <button class="danger" disabled=${finished}
        onClick=${() =>
          act("Cancel", "/cancel", {
            taskId: task.id,
            reason: "cancelled from the dashboard",
          })}>Cancel</button>
      <button disabled=${!(task.status === "error" || task.status === "cancelled")}
        onClick=${() => act("Retry", "/retry", { taskId: task.id })}>Retry</button>
      <button onClick=${async () => {
        try {
          onForked((await api("/fork", { method: "POST", body: { taskId: task.id } })).task.id);
        } catch (err) {
          setNotice(`Fork: ${err.message}`);
        }
      }}>Fork</button>
      <button class="danger" disabled=${!finished} onClick=${() => {
        if (confirm(`Delete task ${task.id} and its files?`)) {
          act("Delete", `/task?id=${encodeURIComponent(task.id)}`, undefined, "DELETE");
        }
      }}>Delete</button>
    </div>
    ${notice ? html`<div class="banner info" role="status">${notice}</div>` : null}
    ${task.error
      ? html`<div class="banner bad" role="alert"><strong>${task.error.name}</strong> (${task.error.kind}): ${task.error.message}</div>`
      : null}
    ${pending.length || task.signalsAwaited?.length ? html`<h2>Waiting for</h2>` : null}
    ${pending.map((r) =>
      html`<${AnswerForm} key=${r.id} task=${task} request=${r} onDone=${reload} />`
    )}
    ${[...new Set(task.signalsAwaited ?? [])].map((name) =>
      html`<${SignalForm} key=${name} task=${task} name=${name} onDone=${reload} />`
    )}
    <h2>Timeline</h2>
    <${Timeline} task=${task} onForked=${onForked} />
    ${task.status === "completed"
      ? html`
        <h2>Result</h2>
        <pre class="result">${JSON.stringify(task.result, null, 2)}</pre>
      `
      : null}
    ${source
      ? html`<h2>Code${
        source.task
          ? html`
            <span class="muted">(definition ${source.task})</span>
          `
          : ""
      }</h2>
        <${Code} code=${source.code} mark=${task.error ? errorLine(source.errorStack) : null} />
        ${source.errorStack ? html`<pre class="stack">${source.errorStack}</pre>` : null}
        ${
        source.input !== undefined
          ? html`
            <h2>Input</h2>
            <pre>${JSON.stringify(source.input, null, 2)}</pre>
          `
          : null
      }
        <h2>Variables</h2>
        <pre class="variables">${JSON.stringify(source.variables, null, 2)}</pre>`
      : null}
    <details>
      <summary>Raw state (JSON)</summary>
      <pre class="raw">${JSON.stringify({ ...task, source }, null, 2)}</pre>
    </details>
  `;
}

// ---------------------------------------------------------------------------------------
// New task

const EXAMPLE = `// fetch() pauses the task; the response resumes it.
const res = await fetch("https://example.com/");
console.log("status", res.status);
// The value of the last expression is the result.
({ status: res.status });
`;

function NewTask() {
  const [mode, setMode] = useState("code");
  const [code, setCode] = useState(EXAMPLE);
  const [lang, setLang] = useState("js");
  const [definitions, setDefinitions] = useState([]);
  const [definition, setDefinition] = useState("");
  const [input, setInput] = useState("");
  const [name, setName] = useState("");
  const [id, setId] = useState("");
  const [autoFetch, setAutoFetch] = useState("");
  const [error, setError] = useState(null);
  useEffect(() => {
    api("/definitions").then((d) => {
      setDefinitions(d.definitions);
      if (d.definitions[0]) setDefinition(d.definitions[0].name);
    }, () => {});
  }, []);
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      const body = mode === "code" ? { code, lang } : { task: definition };
      if (input.trim() !== "") body.input = JSON.parse(input);
      if (name) body.name = name;
      if (id) body.id = id;
      if (autoFetch) body.autoFetch = autoFetch === "true";
      const data = await api("/task", { method: "POST", body });
      navigate(`#/task/${encodeURIComponent(data.task.id)}`);
    } catch (err) {
      setError(err instanceof SyntaxError ? `Input is not JSON: ${err.message}` : err.message);
    }
  };
  return html`
    <h1>New task</h1>
    <form onSubmit=${submit} aria-label="New task">
          <fieldset class="filters">
            <legend class="sr-only">What to run</legend>
            <label class="inline"><input type="radio" name="mode" checked=${mode === "code"}
              onChange=${() => setMode("code")} /> Code</label>
            <label class="inline"><input type="radio" name="mode" checked=${mode === "definition"}
              disabled=${definitions.length === 0} onChange=${() =>
                setMode("definition")} /> Definition${definitions.length === 0
                ? " (none in tasks/)"
                : ""}</label>
          </fieldset>
          ${mode === "code"
            ? html`
              <label>Code <textarea name="code" rows="14" spellcheck="false"
                          onInput=${(e) => setCode(e.target.value)}>${code}</textarea></label>
              <label class="inline">Language <select name="lang" value=${lang} onChange=${(e) =>
                setLang(e.target.value)}>
                          <option value="js">JavaScript</option><option value="ts">TypeScript</option></select></label>
            `
            : html`<label>Definition <select name="task" value=${definition} onChange=${(e) =>
              setDefinition(e.target.value)}>
            ${definitions.map((d) => html`<option value=${d.name}>${d.name} (${d.lang})</option>`)}
          </select></label>`}
          <label>Input (JSON, optional) <textarea name="input" rows="3"
            onInput=${(e) => setInput(e.target.value)}>${input}</textarea></label>
          <div class="filters">
            <label>Name <input name="name" value=${name} onInput=${(e) =>
              setName(e.target.value)} /></label>
            <label>Id (optional) <input name="id" value=${id} onInput=${(e) =>
              setId(e.target.value)} /></label>
            <label>autoFetch <select name="autoFetch" value=${autoFetch} onChange=${(e) =>
              setAutoFetch(e.target.value)}>
              <option value="">server default</option><option value="true">true: the server fetches</option>
              <option value="false">false: answer by hand (POST /call)</option></select></label>
          </div>
          ${error ? html`<div class="banner bad" role="alert">${error}</div>` : null}
          <div class="actions"><button class="primary" type="submit">Run</button></div>
        </form>
  `;
}

// ---------------------------------------------------------------------------------------
// Token prompt and shell

function TokenPrompt({ onSaved }) {
  const [value, setValue] = useState("");
  return html`
    <form class="token box" aria-label="Token prompt" onSubmit=${(e) => {
      e.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, value.trim());
      onSaved();
    }}>
      <h1>Token needed</h1>
      <p>This server asks for its bearer token (FLOWSTATE_TOKEN). It is kept in this tab only.</p>
      <label>Token <input type="password" name="token" autocomplete="current-password" autofocus
          value=${value} onInput=${(e) => setValue(e.target.value)} /></label>
      <div class="actions"><button class="primary" type="submit">Continue</button></div>
    </form>
  `;
}

function parseHash() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const task = /^\/task\/(.+)$/.exec(hash);
  if (task) return { page: "task", id: decodeURIComponent(task[1]) };
  if (hash === "/new") return { page: "new" };
  return { page: "list" };
}

function App() {
  const [route, setRoute] = useState(parseHash());
  const [needToken, setNeedToken] = useState(false);
  const [generation, setGeneration] = useState(0);
  useEffect(() => {
    const onHash = () => setRoute(parseHash());
    addEventListener("hashchange", onHash);
    onUnauthorized = () => setNeedToken(true);
    return () => removeEventListener("hashchange", onHash);
  }, []);
  let page;
  if (needToken) {
    page = html`<${TokenPrompt} onSaved=${() => (setNeedToken(false),
      setGeneration((g) => g + 1))} />`;
  } else if (route.page === "task") page = html`<${TaskPage} key=${route.id} id=${route.id} />`;
  else if (route.page === "new") page = html`<${NewTask} />`;
  else page = html`<${TaskList} />`;
  return html`
    <header class="top">
      <a class="brand" href="#/">FlowState</a>
      <nav aria-label="Main"><a href="#/">Tasks</a><a href="#/new">New task</a></nav>
      ${sessionStorage.getItem(TOKEN_KEY)
        ? html`<button onClick=${() => (sessionStorage.removeItem(TOKEN_KEY),
          setNeedToken(true))}>Forget token</button>`
        : null}
    </header>
    <main key=${generation}>${page}</main>
  `;
}

const root = document.getElementById("app");
root.textContent = "";
render(html`<${App} />`, root);
