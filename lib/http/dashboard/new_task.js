// The new-task editor: code (JavaScript or TypeScript) or a definition of tasks/, input and
// options; running it opens the task's page.
import { api } from "./api.js";
import { navigate } from "./format.js";
import { html, useEffect, useState } from "./ui.js";

const EXAMPLE = `// fetch() pauses the task; the response resumes it.
const res = await fetch("https://example.com/");
console.log("status", res.status);
// The value of the last expression is the result.
({ status: res.status });
`;

export function NewTask() {
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
