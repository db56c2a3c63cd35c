/**
 * The dashboard in a real headless Chromium (Debian's `chromium`, driven by playwright-core)
 * against the real server process and a local upstream: the list follows tasks as they are
 * created and finish, the timeline shows each fetch with its bodies, cancel, retry, fork
 * with an edited response and answering a pending request work from the page, the token
 * prompt guards the data, and the page cannot be framed. One browser for the file, one page
 * reused by the steps. A screenshot of a task page is written to `DASHBOARD_SCREENSHOT_DIR`
 * (default: a temporary directory, named in the test output).
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { join } from "@std/path";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { startServer, stepper, waitFor } from "../testing/server_process.ts";
import { startUpstream } from "../testing/upstream.ts";

/** Debian's Chromium; the tests never download a browser. */
const CHROMIUM = "/usr/bin/chromium";

/** Time allowed for anything to appear on the page, ms. */
const UI_TIMEOUT_MS = 15_000;

/** Starts Chromium on the new, empty profile directory `userDataDir`. */
function launch(userDataDir: string): Promise<BrowserContext> {
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1280, height: 900 },
  });
}

/** The row of task `id` in the list. */
const row = (page: Page, id: string) => page.locator(`tr[data-task="${id}"]`);

Deno.test({
  name: "the dashboard lists, shows and drives tasks in a real browser",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const upstream = startUpstream();
    const server = await startServer();
    const step = stepper(t, server);
    const profile = await Deno.makeTempDir({ prefix: "flowstate-chromium-" });
    const shots = Deno.env.get("DASHBOARD_SCREENSHOT_DIR") ??
      await Deno.makeTempDir({ prefix: "flowstate-dashboard-" });
    const browser = await launch(profile);
    const page = await browser.newPage();
    page.setDefaultTimeout(UI_TIMEOUT_MS);
    const errors: string[] = [];
    page.on("pageerror", (error) => errors.push(error.message));
    try {
      await step("the shell forbids framing and loads only its own origin", async () => {
        const res = await server.request("/", { token: null });
        assertEquals(res.status, 200);
        assertEquals(res.headers.get("x-frame-options"), "DENY");
        assertStringIncludes(res.headers.get("content-security-policy")!, "frame-ancestors 'none'");
        assertStringIncludes(res.text, "/ui/app.js");
      });

      await step("the list shows a task when it is created and when it completes", async () => {
        await page.goto(`${server.origin}/`);
        await page.getByRole("heading", { name: /Tasks/ }).waitFor();
        const task = await server.createTask({
          id: "held",
          name: "held one",
          code: `const r = await fetch(${JSON.stringify(upstream.url("/hold/a"))});
const { value } = await r.json();
console.log("got", value);
"done " + value`,
        });
        assertEquals(task.id, "held");
        await row(page, "held").waitFor();
        await waitFor(async () =>
          (await row(page, "held").getAttribute("data-status")) === "paused" ||
          (await row(page, "held").getAttribute("data-status")) === "running"
        );
        upstream.release("a", 41);
        await page.locator(`tr[data-task="held"][data-status="completed"]`).waitFor();
      });

      await step(
        "the filters narrow the list by status and name, the id search opens",
        async () => {
          await server.createTask({ id: "other", name: "second", code: "2" });
          await row(page, "other").waitFor();
          await page.getByLabel("Name").fill("held one");
          await waitFor(async () => (await row(page, "other").count()) === 0);
          assertEquals(await row(page, "held").count(), 1);
          await page.getByLabel("Name").fill("");
          await row(page, "other").waitFor();
          await page.getByLabel("Status").selectOption("paused");
          await waitFor(async () => (await row(page, "other").count()) === 0);
          await page.getByLabel("Status").selectOption("completed");
          await row(page, "other").waitFor();
          await page.getByLabel("Status").selectOption("");
          await page.getByLabel("Task id").fill("nobody");
          await page.getByLabel("Task id").press("Enter");
          await page.getByText("No task has the id nobody.").waitFor();
          await page.getByLabel("Task id").fill("other");
          await page.getByLabel("Task id").press("Enter");
          await page.waitForURL(/#\/task\/other$/);
          await page.keyboard.press("Escape");
          await page.waitForURL(/#\/$/);
        },
      );

      await step("the keyboard moves between rows and opens one", async () => {
        await row(page, "other").waitFor();
        await page.locator("tbody tr").first().focus();
        assertEquals(await page.locator("tbody tr").first().getAttribute("data-task"), "other");
        await page.keyboard.press("ArrowDown");
        await page.keyboard.press("Enter");
        await page.waitForURL(/#\/task\/held$/);
        await page.keyboard.press("Escape");
        await page.keyboard.press("/");
        await page.locator('input[name="id-search"]:focus').waitFor();
        await page.keyboard.press("Escape");
        await page.keyboard.press("n");
        await page.waitForURL(/#\/new$/);
      });

      await step("a task's timeline shows its fetches with bodies and its logs", async () => {
        await page.goto(`${server.origin}/`);
        await row(page, "held").getByRole("link").click();
        await page.getByRole("heading", { name: /held one/ }).waitFor();
        const fetch = page.locator(`li[data-fetch="0"]`);
        await fetch.locator("summary").click();
        const body = await fetch.locator("pre.response-body").textContent();
        assertStringIncludes(body!, '"value": 41');
        assertStringIncludes(await page.locator(".timeline").textContent() ?? "", "got 41");
        assertEquals(await page.locator("pre.result").textContent(), '"done 41"');
        await page.screenshot({ path: join(shots, "task_page.png"), fullPage: true });
        console.log(`screenshot: ${join(shots, "task_page.png")}`);
      });

      await step("fork with an edited response runs a new task on it", async () => {
        await page.getByRole("button", { name: /Fork from here/ }).click();
        const form = page.locator("form.fork-form");
        await form.locator('textarea[name="body"]').fill('{ "key": "a", "value": 99 }');
        await form.getByRole("button", { name: "Fork" }).click();
        await page.waitForURL(/#\/task\/(?!held)/);
        await page.locator(".status-completed").first().waitFor();
        assertEquals(await page.locator("pre.result").textContent(), '"done 99"');
        assertStringIncludes(await page.locator(".timeline").textContent() ?? "", "a fork of");
      });

      await step("a pending request is answered by hand from the page", async () => {
        await server.createTask({
          id: "manual",
          autoFetch: false,
          code: `const r = await fetch("https://api.example.com/answer");
(await r.json()).answer`,
        });
        await page.goto(`${server.origin}/#/task/manual`);
        const form = page.locator("form.answer-form");
        await form.locator('textarea[name="body"]').fill('{ "answer": 42 }');
        await form.getByRole("button", { name: "Send response" }).click();
        await page.locator(".status-completed").waitFor();
        assertEquals(await page.locator("pre.result").textContent(), "42");
      });

      await step("a signal the task waits for is sent from the page", async () => {
        await server.createTask({
          id: "signalled",
          code: `const d = await FlowState.waitForSignal("approve");
d.who`,
        });
        await page.goto(`${server.origin}/#/task/signalled`);
        const form = page.locator("form.signal-form");
        await form.locator('textarea[name="data"]').fill('{ "who": "ann" }');
        await form.getByRole("button", { name: "Send signal" }).click();
        await page.locator(".status-completed").waitFor();
        assertEquals(await page.locator("pre.result").textContent(), '"ann"');
      });

      await step("the timeline shows timers, signals and a fetch's retry attempts", async () => {
        await server.createTask({
          id: "timed",
          retry: { attempts: 3, backoffMs: 10, on: ["429"] },
          code: `await FlowState.sleep(20);
const r = await fetch(${JSON.stringify(upstream.url("/limited/dash?fail=1&retryAfter=0"))});
const d = await FlowState.waitForSignal("go");
setTimeout(() => {}, 60_000);
[(await r.json()).attempt, d.n]`,
        });
        await page.goto(`${server.origin}/#/task/timed`);
        await page.locator("form.signal-form").waitFor();
        const timeline = page.locator(".timeline");
        await timeline.locator("li.kind-timer").first().waitFor();
        assertStringIncludes(
          await timeline.locator("li.kind-timer").first().textContent() ?? "",
          "fired",
        );
        const fetch = page.locator(`li[data-fetch="0"]`);
        assertStringIncludes(await fetch.locator("summary").textContent() ?? "", "2 attempts");
        await fetch.locator("summary").click();
        const attempts = await fetch.locator("ol.attempts li").allTextContents();
        assertEquals(attempts.length, 2);
        assertStringIncludes(attempts[0]!, "429");
        assertStringIncludes(attempts[1]!, "200");
        const form = page.locator("form.signal-form");
        await form.locator('textarea[name="data"]').fill('{ "n": 5 }');
        await form.getByRole("button", { name: "Send signal" }).click();
        await timeline.locator("li.kind-signal").waitFor();
        assertStringIncludes(
          await timeline.locator("li.kind-signal").textContent() ?? "",
          '"n": 5',
        );
        await timeline.locator("li.kind-timer.armed").waitFor();
        assertStringIncludes(
          await timeline.locator("li.kind-timer.armed").textContent() ?? "",
          "armed",
        );
        await server.request("/cancel", { body: { taskId: "timed" } });
      });

      await step("a fetch the task aborted shows as aborted in the timeline", async () => {
        await server.createTask({
          id: "aborter",
          code: `const controller = new AbortController();
setTimeout(() => controller.abort(), 50);
try {
  await fetch(${JSON.stringify(upstream.url("/hold/never"))}, { signal: controller.signal });
} catch (error) {
  error.name;
}`,
        });
        await page.goto(`${server.origin}/#/task/aborter`);
        await page.locator(".status-completed").first().waitFor();
        assertEquals(await page.locator("pre.result").textContent(), '"AbortError"');
        const fetch = page.locator(`li.aborted[data-fetch="0"]`);
        assertStringIncludes(await fetch.locator("summary").textContent() ?? "", "aborted");
      });

      await step("cancel, then retry, from the page", async () => {
        await server.createTask({
          id: "to-cancel",
          code: `const r = await fetch(${JSON.stringify(upstream.url("/hold/b"))});
(await r.json()).value`,
        });
        await page.goto(`${server.origin}/#/task/to-cancel`);
        await page.getByRole("button", { name: "Cancel" }).click();
        await page.locator(".status-cancelled").first().waitFor();
        assertEquals((await server.task("to-cancel")).status, "cancelled");
        upstream.release("b", 7);
        await page.getByRole("button", { name: "Retry" }).click();
        await page.locator(".status-completed").waitFor();
        assertEquals(await page.locator("pre.result").textContent(), "7");
        assertEquals((await server.task("to-cancel")).retries, 1);
      });

      await step("a new task from the editor opens its page and runs", async () => {
        await page.goto(`${server.origin}/#/new`);
        await page.locator('textarea[name="code"]').fill(
          `const r = await fetch(${JSON.stringify(upstream.url("/number/5"))});
(await r.json()).value * 2`,
        );
        await page.getByLabel("Id (optional)").fill("from-editor");
        await page.getByRole("button", { name: "Run" }).click();
        await page.waitForURL(/#\/task\/from-editor$/);
        await page.locator(".status-completed").waitFor();
        assertEquals(await page.locator("pre.result").textContent(), "10");
      });

      await step("the code of a failed task marks the line its exception came from", async () => {
        await server.createTask({
          id: "thrower",
          code: "const x = null;\nfunction f() {\n  return x.y;\n}\nf();",
        });
        await page.goto(`${server.origin}/#/task/thrower`);
        await page.locator(".status-error").first().waitFor();
        assertEquals(await page.locator(".code .ln.marked").textContent(), "  return x.y;\n");
        assertStringIncludes(await page.getByRole("alert").textContent() ?? "", "TypeError");
      });

      await step("delete removes a finished task", async () => {
        page.once("dialog", (dialog) => dialog.accept());
        await page.getByRole("button", { name: "Delete" }).click();
        await page.getByText("This task was deleted").waitFor();
        const res = await server.request("/status?id=thrower");
        assertEquals(res.status, 404);
      });

      await step("the list pages with the server's cursor", async () => {
        const bulk = Array.from({ length: 52 }, (_, i) => `bulk-${String(i).padStart(2, "0")}`);
        for (const id of bulk) await server.createTask({ id, name: "bulk", code: "1" });
        await page.goto(`${server.origin}/`);
        const filtered = page.waitForResponse((res) => res.url().includes("name=bulk"));
        await page.getByLabel("Name").fill("bulk");
        await filtered;
        await row(page, "bulk-51").waitFor();
        await waitFor(async () => (await page.locator("tbody tr").count()) === 50);
        assertEquals(await row(page, "bulk-01").count(), 0);
        await page.getByRole("button", { name: "Older" }).click();
        await row(page, "bulk-00").waitFor();
        assertEquals(await page.locator("tbody tr").count(), 2);
        assert(await page.getByRole("button", { name: "Older" }).isDisabled());
        await page.getByRole("button", { name: "Newer" }).click();
        await row(page, "bulk-51").waitFor();
        await page.getByLabel("Name").fill("");
      });

      assertEquals(errors, []);
    } finally {
      await page.close();
      await browser.close();
      await server.close();
      await upstream.close();
      await Deno.remove(profile, { recursive: true });
    }
  },
});

Deno.test({
  name: "with FLOWSTATE_TOKEN the dashboard asks for the token and shows nothing without it",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const server = await startServer({
      env: { FLOWSTATE_TOKEN: "s3cret-token" },
      token: "s3cret-token",
    });
    const step = stepper(t, server);
    const profile = await Deno.makeTempDir({ prefix: "flowstate-chromium-" });
    const browser = await launch(profile);
    const page = await browser.newPage();
    page.setDefaultTimeout(UI_TIMEOUT_MS);
    try {
      await server.createTask({ id: "secret-task", code: "'hidden'" });
      await step("without the token the page asks for it and lists no task", async () => {
        await page.goto(`${server.origin}/`);
        await page.getByRole("heading", { name: "Token needed" }).waitFor();
        assertEquals(await row(page, "secret-task").count(), 0);
        const data = await server.request("/status", { token: null });
        assertEquals(data.status, 401);
      });
      await step("a wrong token is asked for again", async () => {
        await page.locator('input[name="token"]').fill("wrong");
        await page.getByRole("button", { name: "Continue" }).click();
        await page.getByRole("heading", { name: "Token needed" }).waitFor();
      });
      await step("the right token shows the tasks, kept for the tab", async () => {
        await page.locator('input[name="token"]').fill("s3cret-token");
        await page.getByRole("button", { name: "Continue" }).click();
        await row(page, "secret-task").waitFor();
        await page.reload();
        await row(page, "secret-task").waitFor();
        assert(await page.evaluate(() => sessionStorage.getItem("flowstate-token") !== null));
      });
    } finally {
      await page.close();
      await browser.close();
      await server.close();
      await Deno.remove(profile, { recursive: true });
    }
  },
});
