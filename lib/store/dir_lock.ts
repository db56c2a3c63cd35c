/**
 * One server per states directory: an exclusive advisory lock (`flock`) on a lock file
 * inside it, held for the life of the process. The operating system releases it when the
 * process ends, however it ends, so a killed server never leaves a stale lock behind.
 *
 * @module
 */
import { join } from "node:path";
import { openRegularFile, STATE_DIR_MODE } from "./atomic_file.ts";

/** Name of the lock file inside the states directory. */
export const LOCK_FILE_NAME = ".flowstate.lock";

/** Another process holds the directory's lock. */
export class DirectoryLockedError extends Error {
  override name = "DirectoryLockedError";
}

/** A held lock; `release()` (or disposal) gives it up. */
export interface DirectoryLock extends Disposable {
  release(): void;
}

/**
 * Creates `dir` (mode 0700) if missing, restricts it to its owner, and takes its lock; rejects
 * with a {@link DirectoryLockedError} naming the holder's process id when another process
 * (or another lock in this one) holds it. Never waits.
 */
export async function lockDirectory(dir: string): Promise<DirectoryLock> {
  await Deno.mkdir(dir, { recursive: true, mode: STATE_DIR_MODE });
  if (Deno.build.os !== "windows") await Deno.chmod(dir, STATE_DIR_MODE);
  const path = join(dir, LOCK_FILE_NAME);
  const file = await openRegularFile(path, { read: true, write: true, create: true });
  let locked = false;
  try {
    locked = await file.tryLock(true);
    if (!locked) {
      const holder = new TextDecoder().decode(await Deno.readFile(path)).trim();
      throw new DirectoryLockedError(
        `Cannot use STATES_DIR "${dir}": another FlowState server${
          /^[0-9]+$/.test(holder) ? ` (process ${holder})` : ""
        } is using it; stop it or choose another directory`,
      );
    }
    await file.truncate(0);
    await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
  } catch (error) {
    file.close();
    throw error;
  }
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    file.close(); // Closing the file releases the lock.
  };
  return { release, [Symbol.dispose]: release };
}
