// Small views and helpers shared by the pages: times, statuses, JSON, navigation.
import { html } from "./ui.js";

/** "3 s ago", "in 2 min". */
export function relative(iso, now = Date.now()) {
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
export function Time({ at }) {
  if (!at) return null;
  const date = new Date(at);
  return html`<time datetime=${date.toISOString()} title=${date.toISOString()}>${
    relative(at)
  } · ${date.toLocaleTimeString()}</time>`;
}

export function Status({ status }) {
  return html`<span class=${`status status-${status}`}>${status}</span>`;
}

/** Pretty JSON when `text` parses, else the text. */
export function pretty(text) {
  if (typeof text !== "string") return JSON.stringify(text, null, 2);
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

/** Opens the page of `hash` (`#/task/<id>`, `#/new`, `#/`). */
export function navigate(hash) {
  location.hash = hash;
}
