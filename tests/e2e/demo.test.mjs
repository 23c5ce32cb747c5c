// End to end, the event sources and the live demo in the real window: the ingest API answers
// with the token the Sources page shows; a CSV import from the file picker reports its bad lines
// by number and saves them all; attribution counts each source. Then the demo an account
// manager gives: start the demo at 10 events/s → the delivery log fills live → revoke TikTok in
// the Sandbox page → the TikTok card shows "Credential failures detected" → rotate the token →
// deliveries resume.
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { card, freshDataDir, launch, screenshot, textOf, until } from './app.mjs';

const dataDir = freshDataDir('demo');
const csvPath = join(dataDir, 'players.csv');
const errorsPath = join(dataDir, 'import-errors.ndjson');
const SANDBOX = 'http://127.0.0.1:47811';
let app;
let browser;

before(async () => {
  const now = new Date().toISOString();
  writeFileSync(
    csvPath,
    'event_id,name,occurred_at,player_id,consent,click_ids.ttclid,click_ids.rdt_cid,value,currency\n' +
      `csv-1,purchase,${now},p-csv-1,full,tt-1,,4.99,USD\n` +
      `csv-2,purchase,${now},p-csv-2,full,,rd-2,1.99,EUR\n` +
      `csv-3,purchase,yesterday,p-csv-3,full,tt-3,,1.99,USD\n` +
      `csv-4,purchase,${now},,full,tt-4,,1.99,USD\n` +
      `csv-5,purchase,${now},p-csv-5,full,,,0.99,USD\n`,
  );
  app = await launch({ POSTBACK_DATA_DIR: dataDir, POSTBACK_E2E_OPEN: csvPath, POSTBACK_E2E_SAVE_AS: errorsPath });
  browser = app.browser;
  await until(browser, async () => (await browser.$$('[data-testid="integrations"] > li')).length === 3, 30000, 'the cards');
});

after(async () => {
  await fetch(`${SANDBOX}/__sandbox/reset`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }).catch(() => {});
  await app?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function openPage(page, title) {
  await browser.$(`nav a[data-page="${page}"]`).click();
  await until(browser, async () => (await browser.$('h1').getText()) === title, 10000, `the ${title} page`);
}

test('the ingest API takes events with the token the Sources page shows', async () => {
  await openPage('sources', 'Sources');
  const url = await textOf(browser, '[data-testid="ingest-url"]');
  assert.equal(url, 'http://127.0.0.1:47820');
  assert.match(await textOf(browser, '[data-testid="ingest-token"]'), /•/, 'hidden until asked');
  await browser.$('[data-testid="show-token"]').click();
  await until(browser, async () => (await textOf(browser, '[data-testid="ingest-token"]')).startsWith('pbd_'), 5000, 'the token');
  const token = await textOf(browser, '[data-testid="ingest-token"]');
  const send = (bearer) =>
    fetch(`${url}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` },
      body: JSON.stringify([{ event_id: 'ing-1', name: 'purchase', occurred_at: new Date().toISOString(), player_id: 'p-ing',
        consent: 'full', click_ids: { ttclid: 'tt' } }]),
    });
  const answer = await (await send(token)).json();
  assert.equal(answer.results[0].status, 'accepted');
  assert.equal((await send('pbd_wrong')).status, 401);
});

test('a CSV import reports bad lines by number, saves them all, and attribution counts each source', async () => {
  await browser.$('[data-testid="import-file"]').click();
  const report = await textOf(browser, '[data-testid="import-report"]');
  assert.match(report, /5 lines · 3 events · 2 conversions queued/);
  assert.match(report, /2 bad lines/);
  const errors = await textOf(browser, '[data-testid="import-errors"]');
  assert.match(errors, /4\s*occurred_at/);
  assert.match(errors, /5\s*player_id/);
  await browser.$('[data-testid="save-errors"]').click();
  await until(browser, async () => (await textOf(browser, '[data-testid="import-notice"]')).includes(errorsPath), 5000, 'saved');
  const saved = readFileSync(errorsPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(saved.map((e) => [e.line, e.field]), [[4, 'occurred_at'], [5, 'player_id']]);
  await until(browser, async () => (await browser.$$('[data-testid="attribution-table"] th[data-source]')).length === 2, 10000, 'two sources');
  const table = await textOf(browser, '[data-testid="attribution-table"]');
  assert.match(table, /File import\s*3/);
  assert.match(table, /Ingest API\s*1/);
  assert.match(table, /no click id/);
  await screenshot(browser, 'sources');
});

const pixelEvents = async (network) => {
  const pixels = await (await fetch(`${SANDBOX}/__sandbox/pixels`)).json();
  return pixels.filter((p) => p.network === network).reduce((n, p) => n + p.events, 0);
};

test('the demo: live log, a revoked TikTok token shows on its card, rotating it resumes deliveries', async () => {
  // One click on the first screen starts it (10 events/s).
  await openPage('integrations', 'Integrations');
  await browser.$('[data-testid="demo-banner-toggle"]').click();
  await until(browser, async () => /[1-9]\d* accepted so far/.test(await textOf(browser, '[data-testid="demo-banner"]')), 10000,
    'demo events accepted');
  // Each card scores the match keys of what it queued in the last 24 h and names the fix.
  await until(browser, async () => /\d+\.\d \/ 10/.test(await textOf(browser, `${card('tiktok')} [data-testid="quality"]`)), 20000,
    "the TikTok card's match quality");
  assert.match(await textOf(browser, `${card('tiktok')} [data-testid="quality-fix"]`), /\d+ % of conversions carry no \w+/);

  // The delivery log fills while it is open: no reload.
  await openPage('log', 'Delivery log');
  const rows = async () => (await browser.$$('[data-testid="log-table"] .row[data-status="success"]')).length;
  await until(browser, async () => (await rows()) >= 1, 20000, 'the first delivered rows');
  const first = await rows();
  await until(browser, async () => (await rows()) > first, 20000, 'more rows, live');

  // Back on the cards once deliveries are under way.
  await openPage('integrations', 'Integrations');
  // How soon the networks accepted them.
  await until(browser, async () => await browser.$(`${card('tiktok')} [data-testid="freshness"]`).isExisting(), 20000, 'freshness');
  assert.match(await textOf(browser, `${card('tiktok')} [data-testid="freshness"]`), /^half within ≤ \d+ (s|min), 95 % within ≤ \d+ (s|min)$/);
  // After delivery too, and per event: launches and purchases apart.
  await until(browser, async () => await browser.$(`${card('tiktok')} [data-testid="quality-accepted"]`).isExisting(), 20000,
    'the score of what TikTok accepted');
  await until(browser, async () => await browser.$(`${card('tiktok')} [data-testid="quality-by-name"]`).isExisting(), 20000,
    'both event names');
  await browser.$(`${card('tiktok')} [data-testid="quality-by-name"] summary`).click();
  const byName = await textOf(browser, `${card('tiktok')} [data-testid="quality-by-name"]`);
  assert.match(byName, /game_launch: \d+\.\d \/ 10 of \d+ queued/);
  assert.match(byName, /purchase: \d+\.\d \/ 10 of \d+ queued/);
  await screenshot(browser, 'integrations-demo');

  // Revoke TikTok's token in the sandbox: its answers become 401.
  await openPage('sandbox', 'Sandbox');
  await until(browser, async () => (await browser.$$('[data-pixel]')).length >= 2, 10000, 'pixels received');
  await browser.$('input[data-revoke="tiktok"]').click();
  await until(browser, async () => (await textOf(browser, '[data-testid="sandbox-notice"]')).includes('applied'), 5000, 'faults applied');

  await openPage('integrations', 'Integrations');
  await until(browser, async () => /Credential failures detected/.test(await textOf(browser, card('tiktok'))), 30000,
    'the TikTok card warns');

  // Rotate: the new token passes validation, and TikTok deliveries resume.
  const before = await pixelEvents('tiktok');
  await browser.$(`${card('tiktok')} [data-testid="connect"]`).click();
  await browser.$('#tiktok-token').waitForExist();
  // The form's own button offers a token that works after the revocation (a regenerated one);
  // pressed until it shows in the field (live updates re-render the card while the demo runs).
  await until(browser, async () => {
    const field = await browser.$('#tiktok-token');
    if ((await field.getValue()) !== 'sandbox-tiktok-token-2') {
      await browser.$(`${card('tiktok')} [data-testid="use-demo-token"]`).click();
    }
    return (await browser.$('#tiktok-token').getValue()) === 'sandbox-tiktok-token-2';
  }, 10000, 'the regenerated demo token in its field');
  await browser.$(`${card('tiktok')} button[type="submit"]`).click();
  const notice = await browser.$(`${card('tiktok')} [data-testid="notice"]`);
  const shown = await notice.waitForExist({ timeout: 20000 }).catch(() => false);
  assert.ok(shown, `no notice after saving the new token; the card says: ${await browser.$(card('tiktok')).getText()}`);
  assert.match(await notice.getText(), /accepted the test event/);
  await until(browser, async () => (await pixelEvents('tiktok')) > before, 30000, 'TikTok deliveries resume');
  await until(browser, async () => !/Credential failures detected/.test(await textOf(browser, card('tiktok'))), 30000,
    'the warning clears after a delivery');

  await openPage('sandbox', 'Sandbox');
  assert.match(await textOf(browser, '[data-testid="demo-stats"]'), /sent · \d+ accepted · 0 rejected/);
  await screenshot(browser, 'sandbox');
  await browser.$('[data-testid="demo-toggle"]').click();
  await until(browser, async () => (await browser.$('[data-testid="demo-toggle"]').getText()) === 'Start demo', 5000, 'stopped');
});
