/**
 * A thread of the engine process that kills the process once the server that started it
 * is gone (its parent process id changes when the parent dies). The engine's own thread
 * cannot notice while a segment is stuck in a built-in, so a server killed with SIGKILL
 * would otherwise leave the segment burning a core until it ends by itself.
 *
 * @module
 */
/// <reference lib="deno.worker" />

/** How often the parent is checked, ms. */
const CHECK_MS = 250;

self.onmessage = (event: MessageEvent<number>) => {
  const parent = event.data;
  setInterval(() => {
    if (Deno.ppid !== parent) Deno.kill(Deno.pid, "SIGKILL");
  }, CHECK_MS);
};
