/**
 * Guest source: `crypto` (`getRandomValues`, `randomUUID`, `subtle`) and `CryptoKey`. The
 * random bytes come from the task's own entropy stream on the host (a replay gets the same
 * bytes); `subtle` offers `digest` (SHA-1, SHA-256, SHA-384, SHA-512) and HMAC
 * (`importKey`/`exportKey` as raw or JWK, `generateKey`, `sign`, `verify`), computed by pure
 * host calls and returned as promises as the Web Crypto API does.
 *
 * @module
 */
import type { GuestAsk, GuestCore, GuestExports, GuestModule, GuestUse } from "./guest_types.ts";

function cryptoFactory(core: GuestCore, use: GuestUse): GuestExports {
  const ask = use("hostcall").ask as GuestAsk;
  const { StringCtor, TypeErrorCtor, toUpperCase, OrigPromise, arrayIncludes } = core;
  const DOMException = use("domexception").DOMException as typeof globalThis.DOMException;
  const Uint8ArrayCtor = Uint8Array;
  const ArrayBufferCtor = ArrayBuffer;
  const isView = ArrayBuffer.isView;
  const bufferSlice = ArrayBuffer.prototype.slice;
  const typedArraySet = Uint8Array.prototype.set;
  const objectToString = Object.prototype.toString;
  const freeze = Object.freeze;
  const MAX_RANDOM_BYTES = 65536;
  const INTEGER_ARRAYS = [
    "[object Int8Array]",
    "[object Uint8Array]",
    "[object Uint8ClampedArray]",
    "[object Int16Array]",
    "[object Uint16Array]",
    "[object Int32Array]",
    "[object Uint32Array]",
    "[object BigInt64Array]",
    "[object BigUint64Array]",
  ];
  const HASHES = ["SHA-1", "SHA-256", "SHA-384", "SHA-512"];
  const BLOCK_BITS: Record<string, number> = {
    "SHA-1": 512,
    "SHA-256": 512,
    "SHA-384": 1024,
    "SHA-512": 1024,
  };
  const JWK_ALG: Record<string, string> = {
    "SHA-1": "HS1",
    "SHA-256": "HS256",
    "SHA-384": "HS384",
    "SHA-512": "HS512",
  };
  const HEX = "0123456789abcdef";

  const random = (n: number): Uint8Array =>
    new Uint8ArrayCtor(ask("crypto.random", n) as ArrayBuffer);

  function getRandomValues<T extends ArrayBufferView>(array: T): T {
    if (arguments.length < 1) {
      throw new TypeErrorCtor(
        "Failed to execute 'getRandomValues' on 'Crypto': 1 argument required, but only 0 present",
      );
    }
    if (!isView(array)) {
      throw new TypeErrorCtor(
        "Failed to execute 'getRandomValues': the argument is not a typed array",
      );
    }
    if (!arrayIncludes.call(INTEGER_ARRAYS, objectToString.call(array))) {
      throw new DOMException(
        "Failed to execute 'getRandomValues': the array is not an integer typed array",
        "TypeMismatchError",
      );
    }
    if (array.byteLength > MAX_RANDOM_BYTES) {
      throw new DOMException(
        "Failed to execute 'getRandomValues': the array's byte length (" + array.byteLength +
          ") exceeds the number of bytes of entropy available (65536)",
        "QuotaExceededError",
      );
    }
    const target = new Uint8ArrayCtor(array.buffer, array.byteOffset, array.byteLength);
    typedArraySet.call(target, random(array.byteLength));
    return array;
  }

  function randomUUID(): string {
    const bytes = random(16);
    bytes[6] = (bytes[6]! & 0x0f) | 0x40;
    bytes[8] = (bytes[8]! & 0x3f) | 0x80;
    let out = "";
    for (let i = 0; i < 16; i++) {
      if (i === 4 || i === 6 || i === 8 || i === 10) out += "-";
      out += HEX[bytes[i]! >> 4]! + HEX[bytes[i]! & 15]!;
    }
    return out;
  }

  /** A copy of a BufferSource's bytes. */
  const bytesOf = (input: unknown): Uint8Array => {
    if (input instanceof ArrayBufferCtor) return new Uint8ArrayCtor(bufferSlice.call(input, 0));
    if (isView(input)) {
      const view = input as ArrayBufferView;
      return new Uint8ArrayCtor(
        bufferSlice.call(view.buffer, view.byteOffset, view.byteOffset + view.byteLength),
      );
    }
    throw new TypeErrorCtor("The data must be an ArrayBuffer or an ArrayBufferView");
  };
  const concat = (a: Uint8Array, b: Uint8Array): ArrayBuffer => {
    const out = new Uint8ArrayCtor(a.length + b.length);
    typedArraySet.call(out, a);
    typedArraySet.call(out, b, a.length);
    return out.buffer;
  };
  const algorithmName = (algorithm: unknown): string => {
    if (typeof algorithm === "string") return toUpperCase.call(algorithm);
    if (typeof algorithm === "object" && algorithm !== null) {
      const name = (algorithm as { name?: unknown }).name;
      if (name === undefined) throw new TypeErrorCtor("The algorithm has no name");
      return toUpperCase.call(StringCtor(name));
    }
    throw new TypeErrorCtor("The algorithm must be a string or an object with a name");
  };
  const hashName = (hash: unknown): string => {
    const name = algorithmName(hash);
    if (!arrayIncludes.call(HASHES, name)) {
      throw new DOMException(
        "Unrecognized hash algorithm " + core.JSONstringify(name),
        "NotSupportedError",
      );
    }
    return name;
  };
  const notSupported = (what: string): never => {
    throw new DOMException(
      what + " is not supported here: the guest's crypto.subtle offers digest and HMAC",
      "NotSupportedError",
    );
  };
  /** Runs `body` and returns its result (or its exception) as a promise. */
  const promised = <T>(body: () => T): Promise<T> =>
    new OrigPromise<T>((resolve) => resolve(body()));

  let newKey: (
    bytes: Uint8Array,
    hash: string,
    extractable: boolean,
    usages: string[],
  ) => CryptoKey;
  let keyBytes: (key: CryptoKey) => Uint8Array;
  let allowed = false;

  class CryptoKey {
    #bytes: Uint8Array;
    #algorithm: { name: string; hash: { name: string }; length: number };
    #extractable: boolean;
    #usages: string[];
    static {
      newKey = (bytes, hash, extractable, usages) => {
        allowed = true;
        try {
          return new CryptoKey(bytes, hash, extractable, usages);
        } finally {
          allowed = false;
        }
      };
      keyBytes = (key) => key.#bytes;
    }
    constructor(bytes: Uint8Array, hash: string, extractable: boolean, usages: string[]) {
      if (!allowed) throw new TypeErrorCtor("Illegal constructor");
      this.#bytes = bytes;
      this.#algorithm = freeze({
        name: "HMAC",
        hash: freeze({ name: hash }),
        length: bytes.length * 8,
      });
      this.#extractable = extractable;
      this.#usages = usages;
    }
    get type(): string {
      return "secret";
    }
    get extractable(): boolean {
      return this.#extractable;
    }
    get algorithm(): { name: string; hash: { name: string }; length: number } {
      return this.#algorithm;
    }
    get usages(): string[] {
      return [...this.#usages];
    }
    get [Symbol.toStringTag](): string {
      return "CryptoKey";
    }
  }

  const checkUsages = (usages: unknown): string[] => {
    const list: string[] = [];
    for (const usage of usages as Iterable<unknown>) {
      const text = StringCtor(usage);
      if (text !== "sign" && text !== "verify") {
        throw new DOMException(
          "An HMAC key cannot be used to " + core.JSONstringify(text),
          "SyntaxError",
        );
      }
      if (!arrayIncludes.call(list, text)) list.push(text);
    }
    if (list.length === 0) {
      throw new DOMException("A secret key needs at least one usage", "SyntaxError");
    }
    return list;
  };
  const hmacParams = (algorithm: unknown): { hash: string; length?: number } => {
    if (algorithmName(algorithm) !== "HMAC") {
      notSupported("The algorithm " + core.JSONstringify(algorithmName(algorithm)));
    }
    const params = algorithm as { hash?: unknown; length?: unknown };
    if (typeof params !== "object" || params.hash === undefined) {
      throw new TypeErrorCtor('HMAC needs a hash, e.g. { name: "HMAC", hash: "SHA-256" }');
    }
    const hash = hashName(params.hash);
    return params.length === undefined ? { hash } : { hash, length: +(params.length as number) };
  };
  const useKey = (algorithm: unknown, key: unknown, usage: string): CryptoKey => {
    if (algorithmName(algorithm) !== "HMAC") {
      notSupported("The algorithm " + core.JSONstringify(algorithmName(algorithm)));
    }
    if (!(key instanceof CryptoKey)) throw new TypeErrorCtor("The key is not a CryptoKey");
    if (!arrayIncludes.call(key.usages, usage)) {
      throw new DOMException(
        "The key's usages do not include " + core.JSONstringify(usage),
        "InvalidAccessError",
      );
    }
    return key;
  };
  const hmac = (key: CryptoKey, data: unknown): Uint8Array =>
    new Uint8ArrayCtor(
      ask(
        "crypto.hmac",
        [key.algorithm.hash.name, keyBytes(key).length],
        concat(keyBytes(key), bytesOf(data)),
      ) as ArrayBuffer,
    );
  const base64url = (bytes: Uint8Array): string => {
    let binary = "";
    for (let i = 0; i < bytes.length; i++) binary += StringCtor.fromCharCode(bytes[i]!);
    const b64 = ask("base64.btoa", binary) as string;
    return b64.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  };
  const fromBase64url = (text: string): Uint8Array => {
    const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const binary = ask("base64.atob", b64) as string;
    const out = new Uint8ArrayCtor(binary.length);
    for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
    return out;
  };

  class SubtleCrypto {
    constructor() {
      if (!allowed) throw new TypeErrorCtor("Illegal constructor");
    }
    digest(algorithm: unknown, data: unknown): Promise<ArrayBuffer> {
      return promised(() => {
        const name = algorithmName(algorithm);
        if (!arrayIncludes.call(HASHES, name)) {
          notSupported("The digest " + core.JSONstringify(name));
        }
        return ask("crypto.digest", name, bytesOf(data).buffer as ArrayBuffer) as ArrayBuffer;
      });
    }
    importKey(
      format: unknown,
      keyData: unknown,
      algorithm: unknown,
      extractable: unknown,
      usages: unknown,
    ): Promise<CryptoKey> {
      return promised(() => {
        const { hash, length } = hmacParams(algorithm);
        const list = checkUsages(usages);
        let bytes: Uint8Array;
        if (format === "raw") {
          bytes = bytesOf(keyData);
        } else if (format === "jwk") {
          const jwk = keyData as { kty?: unknown; k?: unknown; alg?: unknown };
          if (
            typeof jwk !== "object" || jwk === null || jwk.kty !== "oct" ||
            typeof jwk.k !== "string"
          ) {
            throw new DOMException('The JWK is not an "oct" key with "k"', "DataError");
          }
          if (jwk.alg !== undefined && jwk.alg !== JWK_ALG[hash]) {
            throw new DOMException("The JWK's alg does not match the hash " + hash, "DataError");
          }
          bytes = fromBase64url(jwk.k);
        } else {
          return notSupported("The key format " + core.JSONstringify(StringCtor(format)));
        }
        if (bytes.length === 0) throw new DOMException("An HMAC key cannot be empty", "DataError");
        if (length !== undefined && length !== bytes.length * 8) {
          throw new DOMException("The key data does not have the given length", "DataError");
        }
        return newKey(bytes, hash, !!extractable, list);
      });
    }
    exportKey(format: unknown, key: unknown): Promise<ArrayBuffer | Record<string, unknown>> {
      return promised(() => {
        if (!(key instanceof CryptoKey)) throw new TypeErrorCtor("The key is not a CryptoKey");
        if (!key.extractable) {
          throw new DOMException("The key is not extractable", "InvalidAccessError");
        }
        const bytes = keyBytes(key);
        if (format === "raw") return bufferSlice.call(bytes.buffer, 0);
        if (format === "jwk") {
          return {
            kty: "oct",
            k: base64url(bytes),
            alg: JWK_ALG[key.algorithm.hash.name],
            key_ops: key.usages,
            ext: true,
          };
        }
        return notSupported("The key format " + core.JSONstringify(StringCtor(format)));
      });
    }
    generateKey(algorithm: unknown, extractable: unknown, usages: unknown): Promise<CryptoKey> {
      return promised(() => {
        const { hash, length } = hmacParams(algorithm);
        const list = checkUsages(usages);
        const bits = length ?? BLOCK_BITS[hash]!;
        if (!(bits > 0) || bits % 8 !== 0 || bits > 8 * MAX_RANDOM_BYTES) {
          throw new DOMException(
            "The HMAC key length must be a positive multiple of 8",
            "OperationError",
          );
        }
        return newKey(random(bits / 8), hash, !!extractable, list);
      });
    }
    sign(algorithm: unknown, key: unknown, data: unknown): Promise<ArrayBuffer> {
      return promised(() => hmac(useKey(algorithm, key, "sign"), data).buffer as ArrayBuffer);
    }
    verify(algorithm: unknown, key: unknown, signature: unknown, data: unknown): Promise<boolean> {
      return promised(() => {
        const expected = hmac(useKey(algorithm, key, "verify"), data);
        const given = bytesOf(signature);
        let diff = expected.length ^ given.length;
        for (let i = 0; i < expected.length; i++) diff |= expected[i]! ^ (given[i] ?? 0);
        return diff === 0;
      });
    }
    get [Symbol.toStringTag](): string {
      return "SubtleCrypto";
    }
  }

  class Crypto {
    #subtle: SubtleCrypto;
    constructor() {
      if (!allowed) throw new TypeErrorCtor("Illegal constructor");
      this.#subtle = new SubtleCrypto();
    }
    get subtle(): SubtleCrypto {
      return this.#subtle;
    }
    getRandomValues<T extends ArrayBufferView>(_array: T): T {
      return getRandomValues.apply(this, arguments as unknown as [T]) as T;
    }
    randomUUID(): string {
      return randomUUID();
    }
    get [Symbol.toStringTag](): string {
      return "Crypto";
    }
  }
  allowed = true;
  const crypto = new Crypto();
  allowed = false;
  for (const ctor of [Crypto, CryptoKey, SubtleCrypto]) core.webIdl(ctor);
  return { crypto, Crypto, CryptoKey, SubtleCrypto };
}

/** The `crypto` global and its classes. */
export const cryptoModule: GuestModule = {
  name: "crypto",
  globals: ["crypto", "Crypto", "CryptoKey", "SubtleCrypto"],
  factory: cryptoFactory,
};
