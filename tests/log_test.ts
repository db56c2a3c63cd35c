import { assert, assertEquals } from "@std/assert";
import { createLogger, isLogLevel, type LogLevelName } from "../lib/log.ts";

function capture(level?: LogLevelName) {
  const lines: string[] = [];
  const logger = createLogger({ level, write: (line) => lines.push(line) });
  const parsed = () => lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  return { logger, lines, parsed };
}

Deno.test("each call writes one JSON line with time, level, msg and the fields", () => {
  const { logger, lines, parsed } = capture();
  logger.info("request", { method: "GET", status: 200 });
  assertEquals(lines.length, 1);
  assert(!lines[0]!.includes("\n"));
  const [line] = parsed();
  assertEquals(Object.keys(line!).slice(0, 3), ["time", "level", "msg"]);
  assertEquals(line!.level, "info");
  assertEquals(line!.msg, "request");
  assertEquals(line!.method, "GET");
  assertEquals(line!.status, 200);
  assertEquals(new Date(line!.time as string).toISOString(), line!.time);
});

Deno.test("lines below the level are dropped and silent drops everything", () => {
  const warn = capture("warn");
  warn.logger.debug("d");
  warn.logger.info("i");
  warn.logger.warn("w");
  warn.logger.error("e");
  assertEquals(warn.parsed().map((l) => l.level), ["warn", "error"]);
  const silent = capture("silent");
  silent.logger.error("e");
  assertEquals(silent.lines, []);
  const debug = capture("debug");
  debug.logger.debug("d");
  assertEquals(debug.parsed().map((l) => l.level), ["debug"]);
});

Deno.test("child loggers add their fields and call-site fields win", () => {
  const { logger, parsed } = capture();
  const child = logger.child({ taskId: "t1", worker: 1 }).child({ worker: 2 });
  child.info("paused", { worker: 3, step: 4 });
  child.info("resumed");
  const [a, b] = parsed();
  assertEquals([a!.taskId, a!.worker, a!.step], ["t1", 3, 4]);
  assertEquals([b!.taskId, b!.worker], ["t1", 2]);
});

Deno.test("fields cannot overwrite time, level or msg", () => {
  const { logger, parsed } = capture();
  logger.warn("real", { msg: "fake", level: "debug", time: "never" });
  const [line] = parsed();
  assertEquals([line!.msg, line!.level], ["real", "warn"]);
  assertEquals([line!["field.msg"], line!["field.level"], line!["field.time"]], [
    "fake",
    "debug",
    "never",
  ]);
});

Deno.test("errors are logged with name, message and stack", () => {
  const { logger, parsed } = capture();
  logger.error("failed", { error: new RangeError("too big", { cause: new Error("root") }) });
  const error = parsed()[0]!.error as Record<string, unknown>;
  assertEquals(error.name, "RangeError");
  assertEquals(error.message, "too big");
  assert(typeof error.stack === "string" && error.stack.includes("too big"));
  assertEquals((error.cause as Record<string, unknown>).message, "root");
});

Deno.test("unserializable fields are replaced and logging never throws", () => {
  const { logger, parsed } = capture();
  const cycle: Record<string, unknown> = { name: "loop" };
  cycle.self = cycle;
  const selfCaused = new Error("again");
  selfCaused.cause = selfCaused;
  const hostile = {
    toJSON() {
      throw new Error("no");
    },
    toString() {
      return "hostile";
    },
  };
  const worse = {
    toJSON() {
      throw new Error("no");
    },
    toString() {
      throw new Error("still no");
    },
  };
  logger.info("odd", {
    cycle,
    big: 10n,
    hostile,
    worse,
    selfCaused,
    fn: () => 1,
    shared: [cycle, cycle],
  });
  const [line] = parsed();
  assertEquals(line!.cycle, { name: "loop", self: "[Circular]" });
  assertEquals(line!.big, "10");
  assertEquals(line!.hostile, "hostile");
  assertEquals(line!.worse, "[unserializable]");
  assertEquals((line!.selfCaused as Record<string, unknown>).cause, "[Circular]");
  assertEquals(typeof line!.fn, "string");
  assertEquals(line!.shared, [{ name: "loop", self: "[Circular]" }, {
    name: "loop",
    self: "[Circular]",
  }]);
});

Deno.test("a writer that throws does not break the caller", () => {
  const logger = createLogger({
    write: () => {
      throw new Error("disk full");
    },
  });
  logger.error("still fine");
  logger.child({ a: 1 }).info("also fine");
});

Deno.test("isLogLevel accepts exactly the level names", () => {
  assert(isLogLevel("debug") && isLogLevel("silent"));
  assert(!isLogLevel("verbose") && !isLogLevel("INFO") && !isLogLevel(1));
});

Deno.test("each line reaches the writer with its level, so warnings and errors can go to stderr", () => {
  const seen: [string, string][] = [];
  const logger = createLogger({ level: "debug", write: (line, level) => seen.push([level, line]) });
  logger.debug("d");
  logger.info("i");
  logger.warn("w");
  logger.error("e");
  assertEquals(seen.map(([level]) => level), ["debug", "info", "warn", "error"]);
});

Deno.test("the default writer sends debug and info to stdout, warn and error to stderr", async () => {
  const code = `import { createLogger } from ${
    JSON.stringify(new URL("../lib/log.ts", import.meta.url).href)
  };
const logger = createLogger({ level: "debug" });
logger.debug("d"); logger.info("i"); logger.warn("w"); logger.error("e");`;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const msgs = (bytes: Uint8Array) =>
    new TextDecoder().decode(bytes).trim().split("\n").map((line) => JSON.parse(line).msg);
  assertEquals(msgs(output.stdout), ["d", "i"]);
  assertEquals(msgs(output.stderr), ["w", "e"]);
});

Deno.test("the pretty format is time, level, message and key=value fields on one line", () => {
  const lines: string[] = [];
  const logger = createLogger({ format: "pretty", write: (line) => lines.push(line) });
  logger.info("request", { method: "GET", path: "/status", status: 200, note: "two words" });
  logger.warn("odd", { nested: { a: 1 } });
  assertEquals(lines.length, 2);
  assert(
    /^\d\d:\d\d:\d\d\.\d{3} INFO {2}request method=GET path=\/status status=200 note="two words"$/
      .test(lines[0]!),
    lines[0],
  );
  assert(/^\d\d:\d\d:\d\d\.\d{3} WARN {2}odd nested=\{"a":1\}$/.test(lines[1]!), lines[1]);
});

Deno.test("pretty lines colour the level only when asked", () => {
  const lines: string[] = [];
  createLogger({ format: "pretty", color: true, write: (line) => lines.push(line) }).error("e");
  assert(lines[0]!.includes("\x1b[31mERROR\x1b[0m"));
});
