/**
 * The outbound room: performing task fetches (the HTTP client), what they may reach (the
 * egress policy), and the dispatcher that delivers their responses.
 *
 * @module
 */
export * from "./byte_budget.ts";
export * from "./egress_policy.ts";
export * from "./fetch_dispatcher.ts";
export * from "./outbound_fetch.ts";
export * from "./pinned_client_pool.ts";
export * from "./webhook_signature.ts";
export * from "./retry_policy.ts";
