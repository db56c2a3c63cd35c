/**
 * Guest source: `DOMException`, with the legacy `code` of every name that has one and the
 * `*_ERR` constants, as the Web IDL standard defines it.
 *
 * @module
 */
import type { GuestCore, GuestExports, GuestModule } from "./guest_types.ts";

function domExceptionFactory(core: GuestCore): GuestExports {
  const { ErrorCtor, StringCtor, TypeErrorCtor, defineProperty, hasOwn } = core;
  const names = [
    "IndexSizeError",
    "",
    "HierarchyRequestError",
    "WrongDocumentError",
    "InvalidCharacterError",
    "",
    "NoModificationAllowedError",
    "NotFoundError",
    "NotSupportedError",
    "InUseAttributeError",
    "InvalidStateError",
    "SyntaxError",
    "InvalidModificationError",
    "NamespaceError",
    "InvalidAccessError",
    "",
    "TypeMismatchError",
    "SecurityError",
    "NetworkError",
    "AbortError",
    "URLMismatchError",
    "QuotaExceededError",
    "TimeoutError",
    "InvalidNodeTypeError",
    "DataCloneError",
  ];
  const constants = [
    "INDEX_SIZE_ERR",
    "DOMSTRING_SIZE_ERR",
    "HIERARCHY_REQUEST_ERR",
    "WRONG_DOCUMENT_ERR",
    "INVALID_CHARACTER_ERR",
    "NO_DATA_ALLOWED_ERR",
    "NO_MODIFICATION_ALLOWED_ERR",
    "NOT_FOUND_ERR",
    "NOT_SUPPORTED_ERR",
    "INUSE_ATTRIBUTE_ERR",
    "INVALID_STATE_ERR",
    "SYNTAX_ERR",
    "INVALID_MODIFICATION_ERR",
    "NAMESPACE_ERR",
    "INVALID_ACCESS_ERR",
    "VALIDATION_ERR",
    "TYPE_MISMATCH_ERR",
    "SECURITY_ERR",
    "NETWORK_ERR",
    "ABORT_ERR",
    "URL_MISMATCH_ERR",
    "QUOTA_EXCEEDED_ERR",
    "TIMEOUT_ERR",
    "INVALID_NODE_TYPE_ERR",
    "DATA_CLONE_ERR",
  ];
  const codes: Record<string, number> = { __proto__: null } as unknown as Record<string, number>;
  for (let i = 0; i < names.length; i++) if (names[i]) codes[names[i]!] = i + 1;

  class DOMException extends ErrorCtor {
    #name: string;
    constructor(message: unknown = "", name: unknown = "Error") {
      super(StringCtor(message));
      this.#name = StringCtor(name);
    }
    override get name(): string {
      if (!(#name in this)) throw new TypeErrorCtor("Illegal invocation");
      return this.#name;
    }
    get code(): number {
      if (!(#name in this)) throw new TypeErrorCtor("Illegal invocation");
      return hasOwn.call(codes, this.#name) ? codes[this.#name]! : 0;
    }
  }
  for (let i = 0; i < constants.length; i++) {
    const descriptor = { value: i + 1, enumerable: true, writable: false, configurable: false };
    defineProperty(DOMException, constants[i]!, descriptor);
    defineProperty(DOMException.prototype, constants[i]!, descriptor);
  }
  core.webIdl(DOMException);
  return { DOMException };
}

/** The `DOMException` global. */
export const domExceptionModule: GuestModule = {
  name: "domexception",
  globals: ["DOMException"],
  factory: domExceptionFactory,
};
