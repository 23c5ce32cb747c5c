// End to end, the watch side in the real window: events the sandbox accepts (TikTok),
// refuses on credentials (Reddit, token revoked: 401) and rejects (X, a goal mapped to another
// pixel's tag: 400) → the log shows Success, Held and Failed live; the chart matches; the
// Failed row's drill-down shows the request and the answer and no token; after fixing the tag
// a replay brings a new Success row live; the CSV export holds the filtered rows.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { freshDataDir, launch, postback, screenshot, textOf, until } from './app.mjs';

const dataDir = freshDataDir('log');
const exportPath = join(dataDir, 'export.csv');
let app;
let browser;

before(async () => {
  app = await launch({ POSTBACK_DATA_DIR: dataDir, POSTBACK_E2E_SAVE_AS: exportPath });
  browser = app.browser;
  await until(browser, async () => (await browser.$$('[data-testid="integrations"] > li')).length === 3, 30000, 'the cards');
});

after(async () => {
  await app?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const rowsWith = async (status) => browser.$$(`[data-testid="log-table"] .row[data-status="${status}"]`);

test('accepted, refused on credentials and rejected events show as Success, Held and Failed, live', async () => {
  // The sandbox revokes Reddit's token; X's purchase goal points at another pixel's tag.
  await fetch('http://127.0.0.1:47811/__sandbox/faults', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ revoked_tokens: ['sandbox-reddit-token'] }),
  });
  await postback(dataDir, ['map-tag', '--config', '3', '--goal', 'purchase', '--tag', 'tw-other-buy99']);
  await browser.$('nav a[data-page="log"]').click();
  await until(browser, async () => (await browser.$('h1').getText()) === 'Delivery log', 10000, 'the log page');
  await until(browser, async () => await browser.$('[data-testid="log-empty"]').isExisting(), 10000, 'an empty log');

  const file = join(dataDir, 'events.ndjson');
  writeFileSync(file, JSON.stringify({ event_id: 'log-1', name: 'purchase', occurred_at: new Date().toISOString(),
    player_id: 'p-log', consent: 'full', click_ids: { ttclid: 'tt', rdt_cid: 'rd', twclid: 'tw' }, value: '2.99', currency: 'USD' }));
  const report = await postback(dataDir, ['import', file]);
  assert.equal(report.enqueued, 3);
  // No reload: the rows arrive as the dispatcher settles them.
  await until(browser, async () => (await rowsWith('success')).length === 1 && (await rowsWith('held')).length === 1
    && (await rowsWith('failed')).length === 1, 30000, 'Success, Held and Failed rows');
  const totals = await textOf(browser, '[data-testid="totals"]');
  assert.match(totals, /Success\s*1/);
  assert.match(totals, /Failed\s*1/);
  assert.match(totals, /Held \/ offline\s*1/);
  // The chart's bars add up to the same counts.
  const bars = await browser.execute(() => [...document.querySelectorAll('[data-testid="chart-data"] tbody tr')].map((tr) =>
    Object.fromEntries([...tr.querySelectorAll('td')].map((td) => [td.dataset.series, Number(td.textContent)]))));
  const sum = (key) => bars.reduce((n, b) => n + b[key], 0);
  assert.deepEqual([sum('success'), sum('failed'), sum('retried'), sum('waiting')], [1, 1, 0, 1]);
  // Beside the chart, per network: how soon the accepted one was taken, and its match quality.
  const tiktok = '[data-testid="range-figures"] tr[data-network-name="TikTok Ads"]';
  await until(browser, async () => /\(1 accepted\)/.test(await textOf(browser, `${tiktok} [data-figure="freshness"]`)), 10000,
    "TikTok's delay to acceptance");
  assert.match(await textOf(browser, `${tiktok} [data-figure="freshness"]`), /^≤ \d+ s \/ ≤ \d+ s/);
  // Queued / accepted: the accepted one has a score too.
  assert.match(await textOf(browser, `${tiktok} [data-figure="quality"]`), /^\d+\.\d \/ \d+\.\d$/);
  await screenshot(browser, 'delivery-log');
});

test("a Failed row's drill-down shows the request and the network's answer, and no token", async () => {
  const [failed] = await rowsWith('failed');
  await failed.$('[data-testid="open-row"]').click();
  const body = await textOf(browser, '[data-testid="request-body"]');
  assert.match(body, /tw-other-buy99/);
  assert.match(await textOf(browser, '[data-testid="answer-status"]'), /400/);
  assert.match(await textOf(browser, '[data-testid="answer-body"]'), /single event tag/);
  assert.match(await textOf(browser, '[data-testid="explanation"]'), /refused this event/);
  const page = await browser.execute(() => document.body.innerText);
  for (const secret of ['sandbox-x-token', 'sandbox-tiktok-token', 'sandbox-reddit-token', 'Bearer ']) {
    assert.ok(!page.includes(secret), `the page shows ${secret}`);
  }
  assert.match(page, /<redacted>/);
  await screenshot(browser, 'delivery-log-detail');
});

test('after fixing the tag, replaying the Failed row brings a new Success row live', async () => {
  await postback(dataDir, ['map-tag', '--config', '3', '--goal', 'purchase', '--tag', 'tw-sbx01-buy01']);
  await browser.$('[data-testid="replay-one"]').click();
  await until(browser, async () => (await rowsWith('success')).length === 2, 30000, 'the replayed conversion delivered');
  const stats = await (await fetch('http://127.0.0.1:47811/__sandbox/stats')).json();
  assert.equal(stats.x.distinct_event_ids, 1);
});

test('the CSV export holds the rows of the filtered view', async () => {
  await browser.$('input[data-status="success"]').click();
  await until(browser, async () => (await browser.$$('[data-testid="log-table"] .row[data-status]')).length === 2, 10000, 'only Success rows');
  assert.match(await browser.getUrl(), /status=success/, 'the filter lives in the URL');
  await browser.$('[data-testid="export-csv"]').click();
  await until(browser, async () => /Exported 2 rows/.test(await textOf(browser, '[data-testid="log-notice"]')), 20000, 'the export');
  assert.ok(existsSync(exportPath));
  const lines = readFileSync(exportPath, 'utf8').trim().split('\n');
  assert.equal(lines[0].split(',')[0], 'time_utc');
  assert.equal(lines.length, 3);
  assert.ok(lines.slice(1).every((l) => l.includes(',success,')), lines.join('\n'));
});
