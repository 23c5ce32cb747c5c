// The Delivery log page's state: its filters (kept in the URL hash), the rows loaded so far
// (keyset pages from Rust, newest first), the chart, the selection, and live rows merged in as
// the dispatcher settles them — without re-querying the page.
import { SvelteSet } from 'svelte/reactivity';
import { backend, type BackendError } from './backend';
import type { DeliveryStatus } from './bindings/DeliveryStatus';
import type { LogEntry } from './bindings/LogEntry';
import type { LogFilter } from './bindings/LogFilter';
import type { LogSummary } from './bindings/LogSummary';

export type Range = '1h' | '24h' | '7d' | '30d' | 'custom';
export const ranges: { range: Range; label: string; ms: number }[] = [
  { range: '1h', label: 'Last hour', ms: 3_600_000 },
  { range: '24h', label: '24 h', ms: 86_400_000 },
  { range: '7d', label: '7 days', ms: 7 * 86_400_000 },
  { range: '30d', label: '30 days', ms: 30 * 86_400_000 },
];
export const statuses: { status: DeliveryStatus; label: string }[] = [
  { status: 'success', label: 'Success' },
  { status: 'failed', label: 'Failed' },
  { status: 'retried', label: 'Retried' },
  { status: 'held', label: 'Held (credentials)' },
  { status: 'offline', label: 'Offline' },
  { status: 'given_up', label: 'Given up' },
];
export const replayable = (status: DeliveryStatus) => status === 'failed' || status === 'given_up';
const PAGE = 200;

/** A datetime-local input's value ↔ epoch ms, in the user's time zone. */
export const fromLocalInput = (value: string) => (value ? new Date(value).getTime() : null);

export class LogView {
  range = $state<Range>('24h');
  from = $state('');
  to = $state('');
  statuses = $state<DeliveryStatus[]>([]);
  configId = $state<number | null>(null);
  eventId = $state('');
  /** A chart bar the user clicked: [start, end) in epoch ms. */
  bar = $state<[number, number] | null>(null);

  // Raw: always replaced whole, never edited in place, so no deep proxy per row.
  rows = $state.raw<LogEntry[]>([]);
  summary = $state.raw<LogSummary | null>(null);
  done = $state(false);
  loading = $state(false);
  error = $state<string | null>(null);
  selected = new SvelteSet<number>();
  private generation = 0;
  /** Live rows that arrived while a reload's queries ran: those committed after the queries
   *  read are in neither result, and are merged in when it returns. */
  private arrivedWhileLoading: LogEntry[] | null = null;

  constructor(
    readonly gameId: number,
    private configIds: () => number[],
    private now: () => number = Date.now,
  ) {}

  /** The filter without a cursor. */
  filter(): LogFilter {
    let since: number | null;
    let until: number | null = null;
    if (this.bar) {
      [since, until] = this.bar;
    } else if (this.range === 'custom') {
      since = fromLocalInput(this.from);
      until = fromLocalInput(this.to);
    } else {
      since = this.now() - (ranges.find((r) => r.range === this.range)?.ms ?? 86_400_000);
    }
    return {
      game_id: this.gameId,
      config_id: this.configId,
      statuses: [...this.statuses],
      since_ms: since,
      until_ms: until,
      event_id: this.eventId.trim() || null,
      before: null,
      limit: PAGE,
    };
  }

  /** Filters as URL parameters (the page's hash). */
  toParams(): Record<string, string> {
    const p: Record<string, string> = { range: this.range };
    if (this.range === 'custom') Object.assign(p, { from: this.from, to: this.to });
    if (this.statuses.length) p.status = this.statuses.join(',');
    if (this.configId !== null) p.config = String(this.configId);
    if (this.eventId.trim()) p.event = this.eventId.trim();
    if (this.bar) p.bar = `${this.bar[0]}-${this.bar[1]}`;
    return p;
  }

  fromParams(params: URLSearchParams) {
    const range = params.get('range') as Range | null;
    this.range = range && (range === 'custom' || ranges.some((r) => r.range === range)) ? range : '24h';
    this.from = params.get('from') ?? '';
    this.to = params.get('to') ?? '';
    const wanted = (params.get('status') ?? '').split(',');
    this.statuses = statuses.map((s) => s.status).filter((s) => wanted.includes(s));
    const config = Number(params.get('config'));
    this.configId = Number.isFinite(config) && config > 0 ? config : null;
    this.eventId = params.get('event') ?? '';
    const bar = (params.get('bar') ?? '').split('-').map(Number);
    this.bar = bar.length === 2 && bar.every((n) => Number.isFinite(n) && n > 0) ? [bar[0], bar[1]] : null;
  }

  /** Loads the first page and the chart again. */
  async reload() {
    const generation = ++this.generation;
    this.loading = true;
    this.error = null;
    this.selected.clear();
    this.arrivedWhileLoading = [];
    try {
      const filter = this.filter();
      const [rows, summary] = await Promise.all([backend.logPage(filter), backend.logSummary({ ...filter, statuses: [], event_id: null })]);
      if (generation !== this.generation) return;
      const loaded = new Set(rows.map((r) => r.id));
      const late = (this.arrivedWhileLoading ?? []).filter((r) => !loaded.has(r.id));
      this.arrivedWhileLoading = null;
      this.rows = rows;
      this.summary = summary;
      this.done = rows.length < PAGE;
      if (late.length) {
        // Shown at once; counted by a fresh chart (the first one may or may not hold them).
        this.prepend(late);
        const counted = await backend.logSummary({ ...filter, statuses: [], event_id: null });
        if (generation === this.generation) this.summary = counted;
      }
    } catch (e) {
      if (generation === this.generation) this.error = (e as BackendError).message;
    } finally {
      if (generation === this.generation) {
        this.loading = false;
        this.arrivedWhileLoading = null;
      }
    }
  }

  /** The next page (keyset: older than the last row shown). */
  async more() {
    if (this.loading || this.done || this.rows.length === 0) return;
    const generation = this.generation;
    const last = this.rows[this.rows.length - 1];
    this.loading = true;
    try {
      const rows = await backend.logPage({ ...this.filter(), before: [last.at, last.id] });
      if (generation !== this.generation) return;
      this.rows = [...this.rows, ...rows];
      this.done = rows.length < PAGE;
    } catch (e) {
      this.error = (e as BackendError).message;
    } finally {
      this.loading = false;
    }
  }

  /** Whether a live row belongs in this view. */
  matches(row: LogEntry): boolean {
    const f = this.filter();
    if (!this.configIds().includes(row.config_id)) return false;
    if (f.config_id !== null && row.config_id !== f.config_id) return false;
    if (f.statuses.length && !f.statuses.includes(row.status)) return false;
    if (f.since_ms !== null && row.at < f.since_ms) return false;
    if (f.until_ms !== null && row.at >= f.until_ms) return false;
    if (f.event_id && row.event_id !== f.event_id) return false;
    return true;
  }

  /** Shows the rows of `batch` that match and are not shown yet; returns those not shown yet. */
  private prepend(batch: LogEntry[]): LogEntry[] {
    const shown = new Set(this.rows.map((r) => r.id));
    const unseen = batch.filter((r) => !shown.has(r.id));
    const fresh = unseen.filter((r) => this.matches(r)).sort((a, b) => b.at - a.at || b.id - a.id);
    if (fresh.length) this.rows = [...fresh, ...this.rows];
    return unseen;
  }

  /** Live rows from the dispatcher: prepended when they match; the chart and totals follow. */
  append(batch: LogEntry[]) {
    this.arrivedWhileLoading?.push(...batch);
    batch = this.prepend(batch);
    const summary = this.summary;
    if (!summary) return;
    const f = this.filter();
    for (const row of batch) {
      if (!this.configIds().includes(row.config_id) || (f.config_id !== null && row.config_id !== f.config_id)) continue;
      if ((f.until_ms !== null && row.at >= f.until_ms) || (f.since_ms !== null && row.at < f.since_ms)) continue;
      const start = row.at - (row.at % summary.bucket_ms);
      let bucket = summary.buckets.find((b) => b.start_ms === start);
      if (!bucket) {
        bucket = { start_ms: start, success: 0, failed: 0, retried: 0, waiting: 0 };
        summary.buckets.push(bucket);
      }
      const t = summary.totals;
      switch (row.status) {
        case 'success': bucket.success++; t.success++; break;
        case 'failed': bucket.failed++; t.failed++; break;
        case 'given_up': bucket.failed++; t.given_up++; break;
        case 'retried': bucket.retried++; t.retried++; break;
        case 'held': bucket.waiting++; t.held++; break;
        case 'offline': bucket.waiting++; t.offline++; break;
      }
      const ended = t.success + t.failed + t.given_up;
      summary.success_rate = ended ? t.success / ended : null;
    }
    this.summary = { ...summary };
  }

  toggle(row: LogEntry) {
    if (!replayable(row.status)) return;
    if (this.selected.has(row.id)) this.selected.delete(row.id);
    else this.selected.add(row.id);
  }
}

const eventNames: Record<string, string> = { game_launch: 'Game Launch', purchase: 'Purchase' };
export const eventLabel = (name: string) => eventNames[name] ?? name;

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
/** "2 min ago", "3 hours ago", "yesterday". */
export function ago(ms: number, now = Date.now()): string {
  // Never in the future: the page's clock ticks every few seconds, and a worker on another
  // machine may stamp rows by a clock ahead of this one; a row newer than "now" is "now".
  const seconds = Math.min(0, Math.round((ms - now) / 1000));
  if (seconds > -5) return relative.format(0, 'second');
  const steps: [Intl.RelativeTimeFormatUnit, number][] = [['second', 60], ['minute', 60], ['hour', 24], ['day', 30], ['month', 12]];
  let value = seconds;
  for (const [unit, size] of steps) {
    if (Math.abs(value) < size) return relative.format(value, unit);
    value = Math.round(value / size);
  }
  return relative.format(value, 'year');
}

/** The exact local time with its time zone. */
export const exact = (ms: number) =>
  new Date(ms).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'long' });
