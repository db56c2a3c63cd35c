/**
 * The service room: the task lifecycle (create, deliver, status, recovery) and the pool
 * of engine workers that keep live VMs.
 *
 * @module
 */
export * from "./task_service.ts";
export * from "./task_types.ts";
export * from "./task_events.ts";
export { ServiceMetrics } from "./metrics.ts";
export type { MetricSources } from "./metrics.ts";
export { WorkerPool } from "./executor.ts";
export type { SegmentOutcome, WorkerPoolOptions } from "./executor.ts";
export { WebhookSender } from "./webhooks.ts";
