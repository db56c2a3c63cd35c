/**
 * The host side of the `variables` view of a paused state: which names to look up (those the
 * code declares, collected once per step) and how often to recompute it.
 *
 * @module
 */

/** Budget of the human-readable `variables` view, in characters of JSON. */
export const MAX_VARIABLES_CHARS = 16 * 1024;
/** Time allowed to compute `variables`, ms. */
export const VARIABLES_TIME_MS = 50;
/** The `variables` view is recomputed at a pause when the last one is older than this, ms. */
const VARIABLES_REFRESH_MS = 200;
/** Most variable names looked up for the `variables` view. */
const MAX_VARIABLE_NAMES = 200;
const DECLARATION = /\b(?:let|const|var)\s+([A-Za-z_$][\w$]*)/g;

/**
 * The `variables` view, recomputed when the last one is older than
 * {@link VARIABLES_REFRESH_MS}: it is for humans, and walking the globals at every pause
 * would cost more than the pause itself.
 */
export class VariablesView {
  #last: Record<string, unknown> = {};
  #at = -Infinity;
  /** Names declared by the code run so far. */
  #declared = new Set<string>();

  /** Forgets everything (a state is being restored). */
  reset(): void {
    this.#declared.clear();
    this.#at = -Infinity;
  }

  /** Collects the names `code` declares. */
  noteCode(code: string): void {
    for (const match of code.matchAll(DECLARATION)) {
      if (this.#declared.size < MAX_VARIABLE_NAMES) this.#declared.add(match[1]!);
    }
  }

  /** The declared names, as JSON. */
  namesJson(): string {
    return JSON.stringify([...this.#declared]);
  }

  /** The view, from `compute` when the last one is stale. */
  fresh(compute: () => Record<string, unknown>): Record<string, unknown> {
    const now = performance.now();
    if (now - this.#at >= VARIABLES_REFRESH_MS) {
      this.#last = compute();
      this.#at = now;
    }
    return this.#last;
  }
}
