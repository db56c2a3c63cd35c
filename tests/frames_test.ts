import { assertEquals, assertRejects, assertThrows } from "@std/assert";
import { encodeFrame, readFrames } from "../lib/service/frames.ts";

/** A stream yielding `bytes` in chunks of `size` bytes. */
function chunked(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(at, at + size));
      at += size;
    },
  });
}

function concat(parts: Uint8Array[]): Uint8Array {
  const all = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.length;
  }
  return all;
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<unknown[]> {
  const messages: unknown[] = [];
  for await (const message of readFrames(stream)) messages.push(message);
  return messages;
}

Deno.test("frames carry messages of any content in order, however the bytes are split", async () => {
  const messages = [
    { seq: 1, text: "line one\nline two", emoji: "😀", nested: [1, [2, [3]]] },
    { seq: 2, big: "é".repeat(200_000) },
    "",
    null,
  ];
  const bytes = concat(messages.map(encodeFrame));
  for (const size of [1, 3, 4096, bytes.length]) {
    assertEquals(await collect(chunked(bytes, size)), messages, `chunks of ${size}`);
  }
});

Deno.test("a stream that ends inside a frame is a SyntaxError", async () => {
  const frame = encodeFrame({ seq: 1 });
  await assertRejects(
    () => collect(chunked(frame.slice(0, frame.length - 1), 2)),
    SyntaxError,
    "ended inside a frame",
  );
});

Deno.test("a value JSON cannot encode throws when framed", () => {
  assertThrows(() => encodeFrame({ n: 1n }), TypeError);
});
