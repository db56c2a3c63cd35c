// The list of tasks: one page of `GET /status` at a time (newest first, cursor paging),
// filtered by status and name on the server, kept live by the event stream, moved through
// with the keyboard (↑/↓ or j/k between rows, Enter opens one).
import { api, useEvents } from "./api.js";
import { navigate, Status, Time } from "./format.js";
import { html, useCallback, useEffect, useRef, useState } from "./ui.js";

const STATUSES = ["running", "paused", "completed", "error", "cancelled"];

/** Rows a page shows. */
export const PAGE_SIZE = 50;

/** How long the list waits to reload after an event it cannot apply in place, ms. */
const RELOAD_DELAY_MS = 250;

function waitsFor(task) {
  const pending = task.fetchRequests ?? (task.fetchRequest ? [task.fetchRequest] : []);
  if (pending.length === 0) return "";
  return pending.map((r) => `${r.method} ${r.url}`).join(", ");
}

/** `GET /status` for one page of the list. */
function listPath({ status, name }, cursor) {
  const query = new URLSearchParams({ limit: String(PAGE_SIZE), order: "newest" });
  if (status) query.set("status", status);
  if (name) query.set("name", name);
  if (cursor) query.set("cursor", cursor);
  return `/status?${query}`;
}

/** Moves the focus to the row `step` rows from the focused one (keyboard navigation). */
function onRowKey(event) {
  const row = event.target.closest("tr[data-task]");
  if (!row) return;
  const moves = { ArrowDown: 1, j: 1, ArrowUp: -1, k: -1 };
  if (event.key === "Enter") {
    event.preventDefault();
    navigate(`#/task/${encodeURIComponent(row.dataset.task)}`);
  } else if (event.key in moves && !event.altKey && !event.ctrlKey && !event.metaKey) {
    event.preventDefault();
    const next = moves[event.key] > 0 ? row.nextElementSibling : row.previousElementSibling;
    next?.focus();
  }
}

export function TaskList() {
  const [filter, setFilter] = useState({ status: "", name: "" });
  const [nameInput, setNameInput] = useState("");
  /** The cursor of every page up to the one shown (`null`: the first). */
  const [cursors, setCursors] = useState([null]);
  const [page, setPage] = useState(null);
  const [counts, setCounts] = useState(null);
  const [error, setError] = useState(null);
  const [idSearch, setIdSearch] = useState("");
  const [notFound, setNotFound] = useState(null);
  const [, tick] = useState(0);
  const reloadTimer = useRef(0);
  const cursor = cursors[cursors.length - 1];

  const load = useCallback(() => {
    api(listPath(filter, cursor)).then(
      (data) => (setPage({ tasks: data.tasks, nextCursor: data.nextCursor }), setError(null)),
      (e) => setError(e.message),
    );
    api("/health").then((data) => setCounts(data.tasks ?? null), () => {});
  }, [filter, cursor]);
  useEffect(load, [load]);
  useEffect(() => {
    const clock = setInterval(() => tick((n) => n + 1), 10_000);
    return () => (clearInterval(clock), clearTimeout(reloadTimer.current));
  }, []);
  // The name filter is applied once typing pauses.
  useEffect(() => {
    const timer = setTimeout(() => {
      if (nameInput.trim() === filter.name) return;
      setFilter((f) => ({ ...f, name: nameInput.trim() }));
      setCursors([null]);
    }, 300);
    return () => clearTimeout(timer);
  }, [nameInput]);

  const reloadSoon = () => {
    clearTimeout(reloadTimer.current);
    reloadTimer.current = setTimeout(load, RELOAD_DELAY_MS);
  };
  useEvents("", (event) => {
    const matches = (t) =>
      (!filter.status || t.status === filter.status) && (!filter.name || t.name === filter.name);
    setPage((shown) => {
      if (!shown) return shown;
      const at = shown.tasks.findIndex((t) => t.id === event.taskId);
      // A task of this page changed: update it in place (or drop it when it left the filter).
      if (at >= 0 && event.type !== "deleted" && matches(event.task)) {
        const tasks = shown.tasks.slice();
        tasks[at] = event.task;
        return { ...shown, tasks };
      }
      // Anything else changes which tasks the page holds: ask the server again.
      if (at >= 0 || (cursors.length === 1 && event.task && matches(event.task))) reloadSoon();
      return shown;
    });
    if (["created", "deleted", "completed", "error", "cancelled"].includes(event.type)) {
      api("/health").then((data) => setCounts(data.tasks ?? null), () => {});
    }
  });

  const openById = async () => {
    const id = idSearch.trim();
    if (!id) return;
    try {
      await api(`/status?id=${encodeURIComponent(id)}`);
      navigate(`#/task/${encodeURIComponent(id)}`);
    } catch (err) {
      setNotFound(err.status === 404 ? `No task has the id ${id}.` : err.message);
    }
  };

  if (error && !page) return html`<div class="banner bad" role="alert">${error}</div>`;
  if (!page) return html`<p class="muted">Loading tasks…</p>`;

  const total = counts ? Object.values(counts).reduce((a, b) => a + b, 0) : null;
  const setStatus = (status) => (setFilter((f) => ({ ...f, status })), setCursors([null]));
  return html`
    <h1>Tasks ${total === null ? null : html`<span class="muted">(${total})</span>`}</h1>
    <div class="filters" role="search">
      <label>Status
        <select value=${filter.status} onChange=${(e) => setStatus(e.target.value)}>
          <option value="">all</option>
          ${STATUSES.map((s) =>
            html`<option value=${s}>${s}${counts ? ` (${counts[s] ?? 0})` : ""}</option>`
          )}
        </select>
      </label>
      <label>Name
        <input type="search" name="name-filter" value=${nameInput} placeholder="exact name…"
          onInput=${(e) => setNameInput(e.target.value)} />
      </label>
      <label>Task id
        <input type="search" name="id-search" value=${idSearch} placeholder="id, then Enter"
          onInput=${(e) => (setIdSearch(e.target.value), setNotFound(null))}
          onKeyDown=${(e) => e.key === "Enter" && (e.preventDefault(), openById())} />
      </label>
      <a href="#/new">New task</a>
    </div>
    ${notFound ? html`<div class="banner bad" role="alert">${notFound}</div>` : null}
    <table aria-label="Tasks" onKeyDown=${onRowKey}>
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
        ${page.tasks.map((t) =>
          html`
            <tr key=${t.id} data-task=${t.id} data-status=${t.status} tabindex="0">
              <td>
                <${Status} status=${t.status} />
              </td>
              <td class="mono">
                <a href=${`#/task/${encodeURIComponent(t.id)}`} tabindex="-1">${t.id}</a>
              </td>
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
    ${page.tasks.length === 0 ? html`<p class="muted">No task matches.</p>` : null}
    <div class="pager">
      <button disabled=${cursors.length === 1}
        onClick=${() => setCursors((c) => c.slice(0, -1))}>Newer</button>
      <span>Page ${cursors.length} · ${page.tasks.length} shown</span>
      <button disabled=${!page.nextCursor}
        onClick=${() => setCursors((c) => [...c, page.nextCursor])}>Older</button>
    </div>
    <p class="muted keys">Keys: ↑/↓ or j/k move between rows, Enter opens a task, / finds by id,
      n starts a new task, Esc comes back here.</p>
  `;
}
