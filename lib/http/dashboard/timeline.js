// A task's timeline: its journal in time order (creation, fetches, timers, signals, retries,
// console lines, the end), each fetch opened to its request and response, and forking from one.
import { api } from "./api.js";
import { pretty, Time } from "./format.js";
import { html, useCallback, useState } from "./ui.js";

function Headers({ headers }) {
  const entries = Object.entries(headers ?? {});
  if (entries.length === 0) return html`<p class="muted">No headers</p>`;
  return html`<pre>${entries.map(([k, v]) => `${k}: ${v}`).join("\n")}</pre>`;
}

/** The attempts the server made at a fetch under the task's retry policy. */
function Attempts({ attempts }) {
  return html`<ol class="attempts" aria-label="Attempts">
    ${
    attempts.map((a, i) =>
      html`<li key=${i}>
        <${Time} at=${a.at} />attempt ${i + 1}: <strong>${a.status ?? "failed"}</strong>${
        a.error ? ` (${a.error})` : ""
      }${a.retryInMs === undefined ? "" : `, retried after ${a.retryInMs} ms`}
      </li>`
    )
  }
  </ol>`;
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
  const since = (at) => `${new Date(at) - new Date(fetch.requestedAt)} ms`;
  const duration = fetch.respondedAt
    ? since(fetch.respondedAt)
    : fetch.abortedAt
    ? `aborted by the task after ${since(fetch.abortedAt)}`
    : "pending";
  const status = fetch.status ?? (fetch.aborted ? "aborted" : fetch.error ? "failed" : "…");
  return html`
    <li class=${fetch.aborted ? "kind-fetch aborted" : "kind-fetch"} data-fetch=${fetch.index}>
      <details onToggle=${(e) => e.target.open && load()}>
          <summary>
            <${Time} at=${fetch.requestedAt} />
            <strong>fetch #${fetch.index}</strong>${" "}
            <span class="mono">${fetch.method} ${fetch.url}</span> → <strong>${status}</strong>
            <span class="muted"> (${duration}${fetch.attempts?.length > 1
              ? `, ${fetch.attempts.length} attempts`
              : ""}${fetch.size === undefined ? "" : `, ${fetch.size} B`}${fetch.parts
              ? `, in ${fetch.parts} parts${fetch.receiving ? ", receiving" : ""}`
              : ""})</span>
          </summary>
          ${fetch.error ? html`<div class="banner bad">${fetch.error}</div>` : null}
          ${fetch.attempts?.length > 1 ? html`<${Attempts} attempts=${fetch.attempts} />` : null}
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

/** The entries of the timeline besides fetches, each with its time and a sort rank. */
function journalItems(task) {
  const items = [{ at: task.createdAt, kind: "created", rank: 0 }];
  for (const f of task.fetches) items.push({ at: f.requestedAt, kind: "fetch", fetch: f, rank: 1 });
  for (const timer of task.timers ?? []) {
    items.push({ at: timer.firedAt ?? timer.dueAt, kind: "timer", timer, rank: 1 });
  }
  for (const [i, signal] of (task.signals ?? []).entries()) {
    items.push({ at: signal.receivedAt, kind: "signal", signal, i, rank: 1 });
  }
  for (const [i, at] of (task.retriedAt ?? []).entries()) {
    items.push({ at, kind: "retry", i, rank: 1 });
  }
  task.logs.forEach((log, i) => {
    items.push({ at: new Date(log.time).toISOString(), kind: "log", log, i, rank: 2 });
  });
  if (task.status === "completed" || task.status === "error" || task.status === "cancelled") {
    items.push({ at: task.updatedAt, kind: task.status === "error" ? "error" : "end", rank: 3 });
  }
  return items.sort((a, b) => a.at.localeCompare(b.at) || a.rank - b.rank);
}

function TimerItem({ timer }) {
  if (!timer.firedAt) {
    return html`<li class="kind-timer armed">
      <${Time} at=${timer.dueAt} /><strong>timer #${timer.id}</strong> armed, due${" "}
      <${Time} at=${timer.dueAt} />
    </li>`;
  }
  const late = timer.dueAt ? new Date(timer.firedAt) - new Date(timer.dueAt) : null;
  return html`<li class="kind-timer">
    <${Time} at=${timer.firedAt} /><strong>timer #${timer.id}</strong> fired${
    late === null
      ? ""
      : html`<span class="muted"> (${late <= 0 ? "on time" : `${late} ms after due`})</span>`
  }
  </li>`;
}

function SignalItem({ signal }) {
  return html`<li class="kind-signal">
    <${Time} at=${signal.receivedAt} /><strong>signal</strong>${" "}
    <span class="mono">${signal.name}</span>${
    signal.data === undefined
      ? null
      : html`<pre class="signal-data">${JSON.stringify(signal.data, null, 2)}</pre>`
  }
  </li>`;
}

/** The journal as one list in time order: fetches, timers, signals, retries, console lines. */
export function Timeline({ task, onForked }) {
  return html`<ol class="timeline" aria-label="Timeline">
    ${
    journalItems(task).map((item) => {
      switch (item.kind) {
        case "fetch":
          return html`
            <${FetchItem} key=${`f${item.fetch.index}`} task=${task} fetch=${item.fetch}
              onForked=${onForked} />
          `;
        case "timer":
          return html`<${TimerItem} key=${`t${item.timer.id}-${item.at}`} timer=${item.timer} />`;
        case "signal":
          return html`<${SignalItem} key=${`s${item.i}`} signal=${item.signal} />`;
        case "retry":
          return html`<li class="kind-retry" key=${`r${item.i}`}>
            <${Time} at=${item.at} /><strong>retried</strong> (POST /retry): the journal is replayed and the failed step tried again
          </li>`;
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
