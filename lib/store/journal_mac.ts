/**
 * Journal integrity: with a server secret (`JOURNAL_KEY`), every journal line carries a MAC
 * (HMAC-SHA256) chained over the lines before it and bound to the task id, so an edited,
 * inserted, removed or reordered line, or a line copied from another task's journal, is
 * detected when the journal is read. The MAC is the line's last field,
 * `..., "mac": "<64 hex digits>"}`, and covers the line without it and the previous line's
 * MAC (the first line's predecessor is the task id).
 *
 * It does not detect a journal cut back to an earlier commit together with its record (a
 * rollback), and it does not hide anything: see the README's Security section.
 *
 * @module
 */

/** A journal that fails its integrity check. */
export class JournalIntegrityError extends Error {
  override name = "JournalIntegrityError";
}

/** `,"mac":"` + 64 hex digits + `"}`: what a signed line ends with. */
const MAC_SUFFIX_LENGTH = 8 + 64 + 2;
const MAC_SUFFIX = /,"mac":"[0-9a-f]{64}"\}$/;

const encoder = new TextEncoder();

/** Signs and checks journal lines with one secret. */
export class JournalMac {
  readonly #key: Promise<CryptoKey>;

  /** A MAC keyed by `secret` (at least 16 characters; the caller checks). */
  constructor(secret: string) {
    this.#key = crypto.subtle.importKey(
      "raw",
      encoder.encode(secret),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
  }

  /** The chain value before task `id`'s first line. */
  static start(id: string): string {
    return `task:${id}`;
  }

  /** Signs `lines` (JSON objects without their `\n`) following `previous`. */
  async sign(
    lines: readonly string[],
    previous: string,
  ): Promise<{ lines: string[]; last: string }> {
    const out: string[] = [];
    let last = previous;
    for (const line of lines) {
      last = await this.#mac(last, line);
      out.push(`${line.slice(0, -1)},"mac":"${last}"}`);
    }
    return { lines: out, last };
  }

  /**
   * Checks signed `lines` following `previous` and returns them without their MACs, with
   * the chain value after the last; throws a {@link JournalIntegrityError} naming the first
   * line (counted from `firstLine`) that is unsigned or whose MAC does not match.
   */
  async verify(
    lines: readonly string[],
    previous: string,
    firstLine = 1,
  ): Promise<{ lines: string[]; last: string }> {
    const out: string[] = [];
    let last = previous;
    for (const [index, signed] of lines.entries()) {
      if (!MAC_SUFFIX.test(signed)) {
        throw new JournalIntegrityError(`line ${firstLine + index} carries no MAC`);
      }
      const line = signed.slice(0, -MAC_SUFFIX_LENGTH) + "}";
      const expected = await this.#mac(last, line);
      if (signed.slice(-66, -2) !== expected) {
        throw new JournalIntegrityError(
          `line ${firstLine + index} does not match its MAC (edited, moved or from another task)`,
        );
      }
      out.push(line);
      last = expected;
    }
    return { lines: out, last };
  }

  async #mac(previous: string, line: string): Promise<string> {
    const signature = await crypto.subtle.sign(
      "HMAC",
      await this.#key,
      encoder.encode(`${previous}\n${line}`),
    );
    return Array.from(new Uint8Array(signature), (b) => b.toString(16).padStart(2, "0")).join("");
  }
}
