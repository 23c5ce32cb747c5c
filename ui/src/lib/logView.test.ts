import { afterEach, describe, expect, it } from 'vitest';
import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import type { LogEntry } from './bindings/LogEntry';
import type { LogFilter } from './bindings/LogFilter';
import type { LogSummary } from './bindings/LogSummary';
import { chartData } from './chart';
import { ago, LogView } from './logView.svelte';

(globalThis as unknown as { window: unknown }).window ??= globalThis;
afterEach(() => clearMocks());

const NOW = Date.UTC(2026, 10, 30, 12, 30);
const HOUR = 3_600_000;
const row = (id: number, at: number, status: LogEntry['status'] = 'success', config_id = 1): LogEntry => ({
  id, at, config_id, network: 'tiktok', event_name: 'purchase', event_id: `e${id}`, goal_key: '', status,
  http_status: 200, latency_ms: 10, attempt: 1, request_id: null, error: null,
});
const summary = (): LogSummary => ({
  bucket_ms: HOUR,
  buckets: [{ start_ms: NOW - (NOW % HOUR), success: 1, failed: 0, retried: 0, waiting: 0 }],
  totals: { success: 1, failed: 0, retried: 0, held: 0, offline: 0, given_up: 0 },
  success_rate: 1,
});

describe('the log view', () => {
  it('pages with a keyset cursor, never an offset', async () => {
    const pages: LogFilter[] = [];
    const all = Array.from({ length: 450 }, (_, i) => row(1000 - i, NOW - i * 1000));
    mockIPC((cmd, args) => {
      const { filter } = args as { filter: LogFilter };
      if (cmd === 'log_summary') return summary();
      if (cmd === 'log_page') {
        pages.push(filter);
        const start = filter.before ? all.findIndex((r) => r.id === filter.before![1]) + 1 : 0;
        return all.slice(start, start + filter.limit);
      }
      throw new Error(cmd);
    });
    const view = new LogView(7, () => [1], () => NOW);
    await view.reload();
    expect(view.rows.length).toBe(200);
    await view.more();
    await view.more();
    expect(view.rows.length).toBe(450);
    expect(view.done).toBe(true);
    expect(pages[0].before).toBeNull();
    expect(pages[1].before).toEqual([all[199].at, all[199].id]);
    expect(pages.every((p) => p.game_id === 7 && p.since_ms === NOW - 86_400_000)).toBe(true);
    expect(new Set(view.rows.map((r) => r.id)).size).toBe(450);
  });

  it('merges live rows that match the filter and updates the chart and totals', async () => {
    mockIPC((cmd) => (cmd === 'log_summary' ? summary() : []));
    const view = new LogView(7, () => [1, 2], () => NOW);
    view.statuses = ['failed'];
    await view.reload();
    view.append([row(1, NOW, 'failed'), row(2, NOW, 'success'), row(3, NOW, 'failed', 99), row(4, NOW - 40 * HOUR, 'failed')]);
    expect(view.rows.map((r) => r.id)).toEqual([1]);
    expect(view.summary!.totals.failed).toBe(1);
    expect(view.summary!.totals.success).toBe(2);
    expect(view.summary!.success_rate).toBeCloseTo(2 / 3);
    const bar = view.summary!.buckets.find((b) => b.start_ms === NOW - (NOW % HOUR))!;
    expect([bar.success, bar.failed]).toEqual([2, 1]);
  });

  it('keeps a live row that arrives while the first page loads, once', async () => {
    let answer: (rows: unknown[]) => void = () => {};
    let summaries = 0;
    // The first chart was read before row 5 committed (1 success), the second after (2).
    const chart = (success: number) => ({ ...summary(), totals: { ...summary().totals, success } });
    mockIPC((cmd) => (cmd === 'log_summary' ? chart(++summaries) : new Promise((done) => (answer = done))));
    const view = new LogView(7, () => [1, 2], () => NOW);
    const loading = view.reload();
    // Settled after the page query read, before it answered: in neither result.
    view.append([row(5, NOW, 'success')]);
    // Settled before the query read: in its result and live too.
    view.append([row(4, NOW - 1, 'success')]);
    answer([row(4, NOW - 1, 'success')]);
    await loading;
    expect(view.rows.map((r) => r.id)).toEqual([5, 4]);
    view.append([row(5, NOW, 'success')]);
    // A row already shown is not shown twice.
    expect(view.rows.map((r) => r.id)).toEqual([5, 4]);
    // The totals come from a chart read after the late row, not from counting it again.
    expect(view.summary!.totals.success).toBe(2);
  });

  it('keeps its filters in the URL and reads them back', () => {
    const view = new LogView(7, () => [1], () => NOW);
    view.range = '7d';
    view.statuses = ['failed', 'held'];
    view.configId = 3;
    view.eventId = ' abc ';
    view.bar = [NOW - HOUR, NOW];
    const again = new LogView(7, () => [1], () => NOW);
    again.fromParams(new URLSearchParams(view.toParams()));
    expect(again.filter()).toEqual(view.filter());
    expect(again.filter()).toMatchObject({ statuses: ['failed', 'held'], config_id: 3, event_id: 'abc', since_ms: NOW - HOUR, until_ms: NOW });
    const junk = new LogView(7, () => [1], () => NOW);
    junk.fromParams(new URLSearchParams('range=forever&status=lost,failed&config=x&bar=1-'));
    expect(junk.filter()).toMatchObject({ statuses: ['failed'], config_id: null, since_ms: NOW - 86_400_000 });
  });

  it('selects only rows that can be replayed', () => {
    const view = new LogView(7, () => [1], () => NOW);
    view.toggle(row(1, NOW, 'success'));
    view.toggle(row(2, NOW, 'failed'));
    view.toggle(row(3, NOW, 'given_up'));
    expect([...view.selected]).toEqual([2, 3]);
  });
});

describe('the chart data', () => {
  it('stacks the series per bar in time order', () => {
    const s = summary();
    s.buckets = [
      { start_ms: NOW, success: 3, failed: 1, retried: 2, waiting: 0 },
      { start_ms: NOW - HOUR, success: 5, failed: 0, retried: 0, waiting: 4 },
    ];
    const data = chartData(s);
    expect(data.starts).toEqual([NOW - HOUR, NOW]);
    expect(data.datasets.map((d) => [d.key, d.data])).toEqual([
      ['success', [5, 3]], ['failed', [0, 1]], ['retried', [0, 2]], ['waiting', [4, 0]],
    ]);
  });

  it('says relative times in words', () => {
    expect(ago(NOW - 2 * 60_000, NOW)).toMatch(/2 min|2 minutes/);
    expect(ago(NOW - 3 * HOUR, NOW)).toMatch(/3 hours|3 hr/);
    // A row a moment newer than the page's clock is "now", never "in 1 second".
    expect(ago(NOW + 1500, NOW)).toBe(ago(NOW, NOW));
    expect(ago(NOW + 1500, NOW)).not.toMatch(/in /);
    // Nor "in 13 seconds" or "in 2 minutes" (a clock ahead of the window's).
    for (const ahead of [13_000, 2 * 60_000, 3 * HOUR]) expect(ago(NOW + ahead, NOW)).toBe(ago(NOW, NOW));
  });
});
