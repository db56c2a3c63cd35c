/**
 * The HTTP edge: `createApp()` turns requests into task-service calls and errors into
 * JSON responses.
 *
 * @module
 */
export * from "./app.ts";
export { JSON_BODY_TYPES, parseOrigin, type SelfMark } from "./request_guard.ts";
