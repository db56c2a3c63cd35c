// The FlowState dashboard: Preact components written with htm (no build step), one module a
// page. Routes are hashes: #/ (tasks), #/task/<id>, #/new. Every API call carries the bearer
// token kept in sessionStorage. Keys anywhere but in a field: / finds a task by id, n opens
// the new-task editor, Esc comes back to the list.
import { setUnauthorizedHandler, TOKEN_KEY } from "./api.js";
import { navigate } from "./format.js";
import { NewTask } from "./new_task.js";
import { TaskList } from "./task_list.js";
import { TaskPage } from "./task_page.js";
import { html, render, useEffect, useState } from "./ui.js";

/** Whether a key press is typed into a field (shortcuts leave those alone). */
function inField(event) {
  const target = event.target;
  return target instanceof HTMLElement &&
    (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
}

/** The shortcuts that work on every page. */
function onShortcut(event) {
  if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
  if (event.key === "Escape") {
    if (inField(event)) event.target.blur();
    else if (location.hash && location.hash !== "#/") navigate("#/");
    return;
  }
  if (inField(event)) return;
  if (event.key === "n") {
    event.preventDefault();
    navigate("#/new");
  } else if (event.key === "/") {
    event.preventDefault();
    if (location.hash && location.hash !== "#/") navigate("#/");
    // The list may be rendering: focus its search box once it is there.
    const focus = (tries) => {
      const box = document.querySelector('input[name="id-search"]');
      if (box) box.focus();
      else if (tries > 0) setTimeout(() => focus(tries - 1), 50);
    };
    focus(20);
  }
}

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
    setUnauthorizedHandler(() => setNeedToken(true));
    addEventListener("keydown", onShortcut);
    return () => (removeEventListener("hashchange", onHash),
      removeEventListener("keydown", onShortcut));
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
