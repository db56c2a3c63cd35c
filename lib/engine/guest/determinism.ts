/**
 * Guest source: what makes a replay see the same values. `Math.random` is seeded
 * (mulberry32, one seed per task), and `Date` reads the guest clock, which the host sets at
 * the start of every run segment from the journal: time stands still within a segment. A
 * segment that reads the clock very often tells the host, so that running out of time can
 * say why a loop waiting for the clock never ends.
 *
 * @module
 */
import type { GuestCore } from "./guest_types.ts";

/** Replaces `Math.random` and `Date` in the guest. */
export function installDeterminism(core: GuestCore): void {
  const { hide, mathImul, OrigDate } = core;
  let seed = 0;
  core.reseed = (value: number) => {
    seed = value >>> 0;
  };
  const hostCall = core.host.call;
  /** Reads of the clock in one segment after which the host is told the script may be waiting on it. */
  const STUCK_READS = 10_000;
  const read = () => {
    if (++core.clockReads === STUCK_READS) hostCall("clock.stuck", "null");
    return core.clock;
  };

  hide(Math, "random", function random() {
    seed = (seed + 0x6D2B79F5) | 0;
    let t = mathImul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + mathImul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  });

  function FlowDate(this: unknown, ...args: unknown[]) {
    if (!new.target) return new OrigDate(read()).toString();
    return args.length === 0
      ? new OrigDate(read())
      : new OrigDate(...(args as ConstructorParameters<DateConstructor>));
  }
  FlowDate.prototype = OrigDate.prototype;
  hide(FlowDate, "now", function now() {
    return read();
  });
  hide(FlowDate, "parse", OrigDate.parse);
  hide(FlowDate, "UTC", OrigDate.UTC);
  hide(OrigDate.prototype, "constructor", FlowDate);
  hide(globalThis, "Date", FlowDate);
}
