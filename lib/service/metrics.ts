/**
 * The server's metrics in Prometheus text format (`GET /metrics`), with prom-client: the
 * reference client of the format, so the exposition (escaping, histogram buckets, content
 * type) is right without code of our own.
 *
 * The service counts segments, fetches and saves as they happen; gauges (tasks by status,
 * live VMs, queue depths) are read from their owners when the metrics are scraped.
 *
 * @module
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";

/** Seconds: from a millisecond to a minute. */
const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Outcome of a delivered fetch response. */
export type FetchOutcome = "ok" | "http_error" | "failed";

/** Values read at scrape time. */
export interface MetricSources {
  /** Tasks by status. */
  tasks(): Record<string, number>;
  /** Live paused VMs kept by the engine processes. */
  liveVms(): number;
  /** Bytes those VMs hold, as counted against `LIVE_VM_MB`. */
  liveVmBytes(): number;
  /** Segments waiting for a worker. */
  segmentQueue(): number;
  /** Outbound requests being performed or delivered. */
  outboundInFlight(): number;
  /** Open `GET /events` streams and waits. */
  eventListeners(): number;
}

/** Every metric of one server. */
export class ServiceMetrics {
  readonly registry: Registry = new Registry();
  readonly segments: Counter<"outcome">;
  readonly fetches: Counter<"outcome">;
  readonly segmentSeconds: Histogram;
  readonly fetchCycleSeconds: Histogram;
  readonly saveSeconds: Histogram;

  constructor() {
    const registers = [this.registry];
    this.segments = new Counter({
      name: "flowstate_segments_total",
      help: "Run segments finished, by outcome (paused, completed, error).",
      labelNames: ["outcome"],
      registers,
    });
    this.fetches = new Counter({
      name: "flowstate_fetches_total",
      help: "Fetch responses delivered to tasks: ok (2xx), http_error (other status), failed.",
      labelNames: ["outcome"],
      registers,
    });
    this.segmentSeconds = new Histogram({
      name: "flowstate_segment_duration_seconds",
      help: "Time of one run segment on a worker, replay included.",
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.fetchCycleSeconds = new Histogram({
      name: "flowstate_fetch_cycle_seconds",
      help: "Time from a task's fetch() to the delivery of its response.",
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.saveSeconds = new Histogram({
      name: "flowstate_save_duration_seconds",
      help: "Time of one durable save of a task record and its journal events.",
      buckets: DURATION_BUCKETS,
      registers,
    });
  }

  /** Registers the gauges read from `sources` at scrape time. */
  observe(sources: MetricSources): void {
    const registers = [this.registry];
    new Gauge({
      name: "flowstate_tasks",
      help: "Tasks by status.",
      labelNames: ["status"],
      registers,
      collect() {
        for (const [status, count] of Object.entries(sources.tasks())) {
          this.set({ status }, count);
        }
      },
    });
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read());
        },
      });
    gauge("flowstate_live_vms", "Live paused VMs kept in engine memory.", sources.liveVms);
    gauge(
      "flowstate_live_vm_bytes",
      "Bytes of the live paused VMs, as counted against LIVE_VM_MB.",
      sources.liveVmBytes,
    );
    gauge("flowstate_segment_queue_depth", "Segments waiting for a worker.", sources.segmentQueue);
    gauge(
      "flowstate_outbound_in_flight",
      "Outbound requests being performed or delivered.",
      sources.outboundInFlight,
    );
    gauge(
      "flowstate_event_listeners",
      "Open event streams and waits.",
      sources.eventListeners,
    );
  }

  /** Counts a delivered fetch response. */
  fetchDelivered(response: { success: boolean; status?: number }, requestedAt?: number): void {
    const outcome: FetchOutcome = response.success
      ? "ok"
      : response.status !== undefined && response.status > 0
      ? "http_error"
      : "failed";
    this.fetches.inc({ outcome });
    if (requestedAt !== undefined) {
      this.fetchCycleSeconds.observe(Math.max(0, Date.now() - requestedAt) / 1000);
    }
  }

  /** The exposition text. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  /** Its content type. */
  get contentType(): string {
    return this.registry.contentType;
  }
}
