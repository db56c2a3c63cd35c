/**
 * What a scenario reports, and the Markdown rendering of it.
 *
 * @module
 */
import { ratio, type Summary } from "./stats.ts";

/** Unit of a row's figures: times are in ms, sizes in bytes, rates per second. */
export type Unit = "ms" | "bytes" | "per_s" | "count";

/** One measured case and, when it has one, its baseline measured in the same run. */
export interface Row {
  case: string;
  unit: Unit;
  subject: Summary;
  baselineLabel?: string;
  baseline?: Summary;
}

/** The outcome of one scenario. */
export interface ScenarioResult {
  id: number;
  key: string;
  title: string;
  rows: Row[];
  /** Short remarks printed under the table. */
  notes: string[];
  /** Named figures the goals and the cost breakdown read. */
  metrics: Record<string, number>;
  /** Every raw figure, for the JSON file. */
  raw: Record<string, unknown>;
  /** Wall time of the scenario, ms. */
  durationMs?: number;
}

/** Where a goal stands. */
export interface GoalResult {
  goal: string;
  target: string;
  measured: string;
  /** `null` when the scenario did not run. */
  pass: boolean | null;
}

/** A figure in its unit, for humans. */
export function formatValue(value: number, unit: Unit): string {
  if (!Number.isFinite(value)) return "–";
  switch (unit) {
    case "ms":
      return formatMs(value);
    case "bytes":
      return formatBytes(value);
    case "per_s":
      return `${value >= 100 ? value.toFixed(0) : value.toFixed(1)}/s`;
    case "count":
      return Number.isInteger(value) ? String(value) : value.toFixed(1);
  }
}

/** Milliseconds: µs below 1 ms, three significant digits otherwise. */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return "–";
  const abs = Math.abs(ms);
  if (abs < 1) return `${(ms * 1000).toFixed(abs < 0.01 ? 2 : 1)} µs`;
  if (abs < 10) return `${ms.toFixed(2)} ms`;
  if (abs < 100) return `${ms.toFixed(1)} ms`;
  if (abs < 10_000) return `${ms.toFixed(0)} ms`;
  return `${(ms / 1000).toFixed(1)} s`;
}

/** Bytes in KiB, MiB or GiB. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return "–";
  const abs = Math.abs(bytes);
  if (abs < 1024) return `${bytes.toFixed(0)} B`;
  if (abs < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (abs < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

/** A ratio as `1.23×`. */
export function formatRatio(value: number): string {
  if (!Number.isFinite(value)) return "–";
  if (value >= 100) return `${value.toFixed(0)}×`;
  if (value >= 10) return `${value.toFixed(1)}×`;
  return `${value.toFixed(2)}×`;
}

/** Escapes the characters that break a Markdown table cell. */
function cell(text: string): string {
  return text.replaceAll("|", "\\|").replaceAll("\n", " ");
}

/** A Markdown table. */
export function table(header: string[], rows: string[][]): string {
  const lines = [
    `| ${header.map(cell).join(" | ")} |`,
    `| ${header.map((_, i) => (i === 0 ? "---" : "---:")).join(" | ")} |`,
    ...rows.map((row) => `| ${row.map(cell).join(" | ")} |`),
  ];
  return lines.join("\n");
}

/** The Markdown section of one scenario: heading, table, notes. */
export function renderScenario(result: ScenarioResult): string {
  const header = ["Case", "Median", "p99", "Baseline", "Baseline median", "Baseline p99", "Ratio"];
  const rows = result.rows.map((row) => {
    const { subject, baseline, unit } = row;
    // A p99 of a handful of samples is just their maximum: not shown.
    const p99 = (s: Summary) => (s.n >= 10 ? formatValue(s.p99, unit) : "–");
    return [
      row.case,
      formatValue(subject.median, unit),
      p99(subject),
      row.baselineLabel ?? "–",
      baseline ? formatValue(baseline.median, unit) : "–",
      baseline ? p99(baseline) : "–",
      baseline ? formatRatio(ratio(subject.median, baseline.median)) : "–",
    ];
  });
  const parts = [`### ${result.id}. ${result.title}`, "", table(header, rows)];
  if (result.notes.length > 0) {
    parts.push("", ...result.notes.map((note) => `- ${note}`));
  }
  return parts.join("\n");
}

/** The Markdown goals table. */
export function renderGoals(goals: readonly GoalResult[]): string {
  return table(
    ["Goal", "Target", "Measured", "Result"],
    goals.map((g) => [
      g.goal,
      g.target,
      g.measured,
      g.pass === null ? "not run" : g.pass ? "pass" : "**miss**",
    ]),
  );
}
