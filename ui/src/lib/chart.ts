// The log chart's data from a summary: one bar per hour (per day over 7 days), stacked.
import type { LogSummary } from './bindings/LogSummary';

export const series = [
  { key: 'success', label: 'Success', color: '--ok' },
  { key: 'failed', label: 'Failed', color: '--bad' },
  { key: 'retried', label: 'Retried', color: '--warn' },
  { key: 'waiting', label: 'Held / offline', color: '--muted' },
] as const;

export function barLabel(start: number, bucketMs: number): string {
  const d = new Date(start);
  return bucketMs >= 86_400_000
    ? d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' })
    : d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}

export function chartData(summary: LogSummary) {
  const buckets = [...summary.buckets].sort((a, b) => a.start_ms - b.start_ms);
  return {
    starts: buckets.map((b) => b.start_ms),
    labels: buckets.map((b) => barLabel(b.start_ms, summary.bucket_ms)),
    datasets: series.map((s) => ({ key: s.key, label: s.label, color: s.color, data: buckets.map((b) => b[s.key]) })),
  };
}
