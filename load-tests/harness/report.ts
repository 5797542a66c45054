/** What every benchmark report shares: latency figures, the machine, a plain-text table. */
import { cpus, release, type as osType } from 'node:os';
import { histogramQuantile, type Buckets, type Summary } from './stats.js';

export interface LatencyFigures {
  p50_ms: number | null;
  p95_ms: number | null;
  p99_ms: number | null;
  max_ms: number | null;
  count: number;
}

export interface MachineInfo {
  cpus: number;
  model: string;
  node: string;
  os: string;
}

/** Rounded for the report; null for NaN and infinities (JSON has no NaN). */
export const round = (v: number, digits = 1): number | null => (Number.isFinite(v) ? Math.round(v * 10 ** digits) / 10 ** digits : null);

export function figures(summary: Summary, digits = 1): LatencyFigures {
  return {
    p50_ms: round(summary.p50, digits),
    p95_ms: round(summary.p95, digits),
    p99_ms: round(summary.p99, digits),
    max_ms: round(summary.max, digits),
    count: summary.count,
  };
}

/** Quantiles estimated from a Prometheus histogram (seconds) as ms; no max. */
export function bucketFigures(buckets: Buckets): LatencyFigures {
  const ms = (q: number) => round(histogramQuantile(q, buckets) * 1000, 2);
  return { p50_ms: ms(0.5), p95_ms: ms(0.95), p99_ms: ms(0.99), max_ms: null, count: buckets.get(Infinity) ?? 0 };
}

export function machine(): MachineInfo {
  const list = cpus();
  return { cpus: list.length, model: list[0]?.model.trim() ?? 'unknown', node: process.version, os: `${osType()} ${release()}` };
}

/** A table cell: – for nothing, one decimal for fractions. */
export function cell(value: unknown): string {
  if (value === null || value === undefined) return '–';
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : value.toFixed(1);
  return String(value);
}

/** "p50 / p99" of latency figures, for one table cell. */
export function pair(f: LatencyFigures, a: 'p50_ms' | 'p95_ms' | 'p99_ms' | 'max_ms' = 'p50_ms', b: 'p50_ms' | 'p95_ms' | 'p99_ms' | 'max_ms' = 'p99_ms'): string {
  return `${cell(f[a])} / ${cell(f[b])}`;
}

/** Columns padded to their widest cell: the first left-aligned, the others right-aligned; a rule under the header. */
export function renderTable(header: string[], body: string[][]): string[] {
  const table = [header, ...body];
  const widths = header.map((_, c) => Math.max(...table.map((row) => (row[c] ?? '').length)));
  const line = (row: string[]) => row.map((v, c) => (c === 0 ? v.padEnd(widths[c]!) : v.padStart(widths[c]!))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)];
}

/** What the figures were measured on: the line every printed report ends with. */
export function machineLine(m: MachineInfo): string {
  return `machine: ${m.cpus} × ${m.model}, Node ${m.node}, ${m.os}`;
}

/** Whether a target was met, for the printed report. */
export function verdict(met: boolean | null): string {
  return met === null ? 'not measured' : met ? 'met' : 'MISSED';
}

/** Other programs above this share of a core during a measured window make its figures pessimistic. */
const BUSY_OTHER_CPU_PERCENT = 15;

/** A blank line and a warning naming the measured windows in which other programs were busy; nothing when the machine was quiet. */
export function busyWarning(windows: { during: string; other_cpu_percent: number | null }[]): string[] {
  const busy = windows.filter((w) => (w.other_cpu_percent ?? 0) > BUSY_OTHER_CPU_PERCENT);
  if (busy.length === 0) return [];
  return ['', `WARNING: other programs used ${busy.map((w) => `${cell(w.other_cpu_percent)}% of a core during ${w.during}`).join(', ')}: the machine was not quiet; these figures are pessimistic.`];
}

/** The "errors" cell of a table: none, the error codes with their counts, or how many errors are listed below. */
export function errorsCell(ok: boolean, codes: Record<string, number>, errors: string[]): string {
  if (ok) return 'none';
  return Object.entries(codes).map(([code, n]) => `${code}×${n}`).join(' ') || `${errors.length} (below)`;
}

/** A blank line, a heading and the first five errors; nothing without errors. */
export function firstErrors(what: string, errors: string[]): string[] {
  if (errors.length === 0) return [];
  return ['', `${what} errors (first ${Math.min(errors.length, 5)} of ${errors.length}):`, ...errors.slice(0, 5).map((e) => `  ${e}`)];
}
