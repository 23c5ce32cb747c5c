// End to end, queued conversions against the network's acceptance window: TikTok refuses the
// token, so a purchase that happened 27 days and 13 hours ago waits (held, not lost); its card
// warns that it reaches TikTok's 28-day limit within 24 h, in 11 hours.
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { card, freshDataDir, launch, postback, screenshot, textOf, until } from './app.mjs';

const dataDir = freshDataDir('deadline');
const SANDBOX = 'http://127.0.0.1:47811';
const sandboxFaults = (faults) =>
  fetch(`${SANDBOX}/__sandbox/faults`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(faults) });
let app;
let browser;

before(async () => {
  app = await launch({ POSTBACK_DATA_DIR: dataDir });
  browser = app.browser;
  await until(browser, async () => (await browser.$$('[data-testid="integrations"] > li')).length === 3, 30000, 'the cards');
});

after(async () => {
  await fetch(`${SANDBOX}/__sandbox/reset`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }).catch(() => {});
  await app?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

test('a card warns when queued conversions near the end of the acceptance window', async () => {
  assert.equal(await browser.$(`${card('tiktok')} [data-testid="deadline"]`).isExisting(), false, 'nothing waits yet');
  await sandboxFaults({ revoked_tokens: ['sandbox-tiktok-token'] });
  const occurred = new Date(Date.now() - (27 * 24 + 13) * 3_600_000).toISOString();
  const file = join(dataDir, 'old.ndjson');
  writeFileSync(file, `${JSON.stringify({ event_id: 'old-1', name: 'purchase', occurred_at: occurred, player_id: 'p-old',
    consent: 'anonymous', click_ids: { ttclid: 'tt-old' } })}\n`);
  assert.equal((await postback(dataDir, ['import', file])).enqueued, 1, 'TikTok only: the other networks have no click id');
  await until(browser, async () => /Paused/.test(await browser.$(card('tiktok')).getText()), 30000, 'TikTok paused on the token');
  await until(browser, async () => await browser.$(`${card('tiktok')} [data-testid="deadline"]`).isExisting(), 15000, 'the warning');
  const warning = await textOf(browser, `${card('tiktok')} [data-testid="deadline"]`);
  assert.match(warning, /^1 queued conversion reaches TikTok Ads's 28-day limit within 24 h \(the first in 1[01] h\)/);
  const cli = await postback(dataDir, ['deadlines']);
  const tiktok = cli.find((d) => d.network === 'tiktok');
  assert.equal(tiktok.closing, 1);
  assert.equal(cli.find((d) => d.network === 'reddit').closing, 0);
  await screenshot(browser, 'deadline');
});
