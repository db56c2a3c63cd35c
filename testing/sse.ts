/**
 * A Server-Sent Events client for tests: opens a stream, parses events as they arrive
 * (per the HTML standard's event-stream rules) and lets a test wait for them.
 *
 * @module
 */

/** One parsed event. */
export interface SseEvent {
  id: string;
  event: string;
  data: string;
}

/** Parses an event stream chunk by chunk. */
export class SseParser {
  #buffer = "";
  #id = "";
  #event = "";
  #data: string[] = [];

  /** Feeds text; returns the events it completed. */
  push(text: string): SseEvent[] {
    this.#buffer += text;
    const out: SseEvent[] = [];
    for (;;) {
      const end = this.#buffer.search(/\r\n|\r|\n/);
      if (end === -1) break;
      const line = this.#buffer.slice(0, end);
      const newline = this.#buffer.startsWith("\r\n", end) ? 2 : 1;
      this.#buffer = this.#buffer.slice(end + newline);
      if (line === "") {
        if (this.#data.length > 0) {
          out.push({ id: this.#id, event: this.#event || "message", data: this.#data.join("\n") });
        }
        this.#event = "";
        this.#data = [];
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "data") this.#data.push(value);
      else if (field === "event") this.#event = value;
      else if (field === "id" && !value.includes("\0")) this.#id = value;
    }
    return out;
  }
}

/** An open event stream. */
export class SseStream {
  readonly events: SseEvent[] = [];
  readonly response: Response;
  readonly #done: Promise<void>;
  readonly #waiters = new Set<() => void>();
  readonly #abort: AbortController;
  #ended = false;

  private constructor(response: Response, abort: AbortController) {
    this.response = response;
    this.#abort = abort;
    this.#done = this.#read();
  }

  /** Opens `url` with `headers` and resolves once the response headers are in. */
  static async open(url: string, headers: Record<string, string> = {}): Promise<SseStream> {
    const abort = new AbortController();
    const response = await fetch(url, { headers, signal: abort.signal });
    if (!response.ok || !response.body) {
      const text = await response.text();
      throw new Error(`GET ${url} answered ${response.status}: ${text}`);
    }
    return new SseStream(response, abort);
  }

  /** Whether the server ended the stream. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Resolves once `predicate` holds for the events so far (or throws after `timeoutMs`). */
  async until(predicate: (events: SseEvent[]) => boolean, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.events)) {
      if (this.#ended) throw new Error(`stream ended; events: ${this.#describe()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; events: ${this.#describe()}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, left);
        const waiters = this.#waiters;
        function done() {
          clearTimeout(timer);
          waiters.delete(done);
          resolve();
        }
        waiters.add(done);
      });
    }
  }

  /** Resolves once the server has ended the stream. */
  async finished(): Promise<void> {
    await this.#done;
  }

  /** Closes the stream from the client side. */
  async close(): Promise<void> {
    this.#abort.abort();
    await this.#done;
  }

  #describe(): string {
    return JSON.stringify(this.events.map((event) => `${event.id} ${event.event}`));
  }

  async #read(): Promise<void> {
    const parser = new SseParser();
    const decoder = new TextDecoder();
    try {
      for await (const chunk of this.response.body!) {
        this.events.push(...parser.push(decoder.decode(chunk, { stream: true })));
        for (const wake of [...this.#waiters]) wake();
      }
    } catch {
      // aborted by close()
    } finally {
      this.#ended = true;
      for (const wake of [...this.#waiters]) wake();
    }
  }
}
