/**
 * What every scenario receives: the run mode, the shared upstream, and figures one
 * scenario leaves for a later one.
 *
 * @module
 */
import type { SpawnedUpstream as Upstream } from "../testing/upstream.ts";

/** Shared state of one benchmark run. */
export interface BenchContext {
  /** `--quick`: smaller sizes and fewer rounds, every scenario still runs. */
  quick: boolean;
  /** The local upstream every fetch goes to. */
  upstream: Upstream;
  /** Writes a progress line to stderr (stdout carries only the report). */
  progress(message: string): void;
  /** Left by the memory scenario for the recovery scenario. */
  shared: {
    /** A states directory holding only paused tasks. */
    pausedStatesDir?: string;
    /** How many paused tasks it holds. */
    pausedCount?: number;
  };
  /** Temp directories to remove at the end. */
  tempDirs: string[];
}

/** Creates a temp directory that the run removes at its end. */
export async function tempDir(ctx: BenchContext, prefix: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: `flowstate-bench-${prefix}-` });
  ctx.tempDirs.push(dir);
  return dir;
}
