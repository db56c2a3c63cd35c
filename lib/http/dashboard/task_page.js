// The page of one task: header, actions, what it waits for (answer a request, send a signal),
// its timeline, result, code with the error line marked, input, variables and raw state.
import { api, useEvents } from "./api.js";
import { navigate, Status, Time } from "./format.js";
import { Timeline } from "./timeline.js";
import { html, useCallback, useEffect, useState } from "./ui.js";

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

export function TaskPage({ id }) {
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
