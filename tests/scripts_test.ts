/**
 * Task code as files: `POST /task` with a JavaScript or TypeScript body, `"lang": "ts"`,
 * `.ts` definitions, `GET /definitions` and the error of an unknown definition, against a
 * real server process.
 */
import { assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { join } from "@std/path";
import type { TaskView } from "../lib/service/task_types.ts";
import { assertErrorResponse, startServer, stepper } from "../testing/server_process.ts";

const TS_DEFINITION = `interface Input { n: number }
const { n } = input as Input;
const double = (x: number): number => x * 2;
({ doubled: double(n) })
`;

Deno.test("POST /task takes scripts as files, TypeScript included; GET /definitions lists tasks/", async (t) => {
  const tasksDir = await Deno.makeTempDir({ prefix: "flowstate-tasks-" });
  await Deno.writeTextFile(join(tasksDir, "double.ts"), TS_DEFINITION);
  await Deno.writeTextFile(join(tasksDir, "hello.js"), `"hello " + input.who`);
  const server = await startServer({ env: { TASKS_DIR: tasksDir } });
  const step = stepper(t, server);
  const post = (path: string, type: string, body: string) =>
    server.request(path, { body, headers: { "content-type": type } });
  const task = (res: { body: unknown }) => (res.body as { task: TaskView }).task;
  try {
    await step(
      "an application/javascript body is the code, the query string the rest",
      async () => {
        const res = await post(
          `/task?id=js-file&name=From%20a%20file&input=${encodeURIComponent('{"a":2}')}`,
          "application/javascript",
          "const a = input.a;\nconst b = 3;\na * b\n",
        );
        assertEquals(res.status, 200, res.text);
        assertEquals(
          [task(res).id, task(res).name, task(res).status, task(res).result],
          ["js-file", "From a file", "completed", 6],
        );
        const text = await post("/task?wait=1000", "text/javascript; charset=utf-8", "40 + 2");
        assertEquals(task(text).result, 42);
      },
    );

    await step("TypeScript by content type or lang runs with its types stripped", async () => {
      const code =
        "const n: number = 20;\ntype T = { v: number };\nconst t: T = { v: n + 1 };\nt.v";
      assertEquals(task(await post("/task", "application/typescript", code)).result, 21);
      const res = await server.request("/task", { body: { code, lang: "ts" } });
      assertEquals(task(res).result, 21);
    });

    await step("errors point at the user's own lines", async () => {
      const runtime = await server.request("/task", {
        body: {
          lang: "ts",
          code: "interface A {\n  x: number;\n}\nconst a: A = { x: 1 };\nnew Error(`line`).stack",
        },
      });
      assertMatch(String(task(runtime).result), /:5(:\d+)?\b/);
      const syntax = await server.request("/task", {
        body: { lang: "ts", code: "const ok = 1;\nconst bad: = 2;" },
      });
      assertErrorResponse(syntax, 400);
      assertStringIncludes((syntax.body as { error: string }).error, "at line 2");
    });

    await step("a .ts definition runs by name; GET /definitions lists both", async () => {
      const res = await server.request("/task", { body: { task: "double", input: { n: 21 } } });
      assertEquals(task(res).result, { doubled: 42 });
      const list = await server.request("/definitions");
      assertEquals(list.body, {
        success: true,
        definitions: [
          { name: "double", lang: "ts", file: "double.ts", size: TS_DEFINITION.length },
          { name: "hello", lang: "js", file: "hello.js", size: 20 },
        ],
      });
    });

    await step("an unknown definition's error names the available ones", async () => {
      const res = await server.request("/task", { body: { task: "tripple" } });
      assertErrorResponse(res, 400);
      assertStringIncludes((res.body as { error: string }).error, "available: double, hello");
    });

    await step("a script body refuses unknown query parameters and a JSON-only field", async () => {
      assertErrorResponse(await post("/task?inputs=1", "application/javascript", "1"), 400);
      assertErrorResponse(await post("/task?task=hello", "application/javascript", "1"), 400);
      assertErrorResponse(await post("/task?input=%7Bx", "application/javascript", "1"), 400);
      assertErrorResponse(await post("/task", "text/plain", "1"), 415);
      const lang = await server.request("/task", { body: { code: "1", lang: "coffee" } });
      assertErrorResponse(lang, 400);
    });
  } finally {
    await server.close();
    await Deno.remove(tasksDir, { recursive: true });
  }
});
