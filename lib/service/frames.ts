/**
 * Length-prefixed JSON frames over a byte stream: the transport between the server and its
 * engine processes. A frame is a 4-byte big-endian payload length followed by the UTF-8
 * JSON of one message, so the reader never scans message bodies for a delimiter and a
 * message of any content (newlines included) crosses as one piece.
 *
 * @module
 */

/** Bytes of the length prefix. */
const HEADER_BYTES = 4;
/** Largest payload a frame may carry (the prefix is a 32-bit length). */
export const MAX_FRAME_BYTES = 0xffff_ffff;
/** Messages up to this many characters are encoded in place (no second copy). */
const SMALL_MESSAGE_CHARS = 64 * 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The frame of `message`: its JSON, prefixed by its length. Throws what `JSON.stringify`
 * throws (a `TypeError` for a cycle or a BigInt), and a `RangeError` for a payload over
 * {@link MAX_FRAME_BYTES}.
 */
export function encodeFrame(message: unknown): Uint8Array {
  const json = JSON.stringify(message);
  let frame: Uint8Array;
  let written: number;
  if (json.length <= SMALL_MESSAGE_CHARS) {
    // UTF-8 needs at most 3 bytes per UTF-16 unit: encode once, in place.
    frame = new Uint8Array(HEADER_BYTES + json.length * 3);
    written = encoder.encodeInto(json, frame.subarray(HEADER_BYTES)).written;
  } else {
    const payload = encoder.encode(json);
    written = payload.length;
    frame = new Uint8Array(HEADER_BYTES + written);
    frame.set(payload, HEADER_BYTES);
  }
  if (written > MAX_FRAME_BYTES) {
    throw new RangeError(`Cannot send a message of ${written} bytes: the limit is 4 GiB`);
  }
  new DataView(frame.buffer).setUint32(0, written);
  return frame.subarray(0, HEADER_BYTES + written);
}

/**
 * The messages of a stream of frames, in order. Ends when the stream ends; a stream that
 * ends inside a frame, or a payload that is not JSON, throws a `SyntaxError`.
 */
export async function* readFrames(stream: ReadableStream<Uint8Array>): AsyncGenerator<unknown> {
  let chunks: Uint8Array[] = [];
  let buffered = 0;
  /** Joins the buffered chunks into one (only when a frame spans several). */
  const joined = (): Uint8Array => {
    if (chunks.length === 1) return chunks[0]!;
    const all = new Uint8Array(buffered);
    let at = 0;
    for (const chunk of chunks) {
      all.set(chunk, at);
      at += chunk.length;
    }
    chunks = [all];
    return all;
  };
  let need = -1;
  for await (const chunk of stream) {
    chunks.push(chunk);
    buffered += chunk.length;
    for (;;) {
      if (need < 0) {
        if (buffered < HEADER_BYTES) break;
        const head = joined();
        need = new DataView(head.buffer, head.byteOffset, HEADER_BYTES).getUint32(0);
      }
      if (buffered < HEADER_BYTES + need) break;
      const bytes = joined();
      const end = HEADER_BYTES + need;
      const payload = bytes.subarray(HEADER_BYTES, end);
      const rest = bytes.subarray(end);
      chunks = rest.length > 0 ? [rest] : [];
      buffered = rest.length;
      need = -1;
      yield JSON.parse(decoder.decode(payload));
    }
  }
  if (buffered > 0) throw new SyntaxError(`The stream ended inside a frame (${buffered} bytes)`);
}
