/**
 * Stopping, starting and restarting the local PostgreSQL server, for the tests of outages
 * (they run as root on the machine that runs it; `pg_ctlcluster` from Debian's
 * postgresql-common).
 *
 * @module
 */

/** `pg_ctlcluster <version> main <action>` on the first cluster under `/etc/postgresql`. */
export async function controlPostgres(action: "start" | "stop" | "restart"): Promise<void> {
  const versions = [...Deno.readDirSync("/etc/postgresql")].map((entry) => entry.name).sort();
  const output = await new Deno.Command("pg_ctlcluster", {
    args: ["--skip-systemctl-redirect", versions[0]!, "main", action],
    stdout: "null",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  // Starting a running server, or stopping a stopped one, is not a failure here.
  if (!output.success && !/already running|is not running/.test(stderr)) {
    throw new Error(`pg_ctlcluster ${action} failed: ${stderr}`);
  }
}
