// End to end, QA's event tester in the real window: pasted JSON with a mistake names its line and
// field; a good event shows what each of the three networks gets (request, match keys, X without
// a test mode); "Send as a test" reaches the sandbox under the code, which the Sandbox page shows,
// while nothing is queued and the delivery log stays empty.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { freshDataDir, launch, sandboxStats, screenshot, textOf, until } from './app.mjs';

const dataDir = freshDataDir('tester');
const SANDBOX = 'http://127.0.0.1:47811';
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

async function openPage(page, title) {
  await browser.$(`nav a[data-page="${page}"]`).click();
  await until(browser, async () => (await browser.$('h1').getText()) === title, 10000, `the ${title} page`);
}

/** Puts `text` in the JSON box as a paste does (one input event). */
async function paste(text) {
  await browser.execute((value) => {
    const box = document.querySelector('[data-testid="event-json"]');
    box.value = value;
    box.dispatchEvent(new Event('input', { bubbles: true }));
  }, text);
}

const preview = (network) => `[data-testid="config-preview"][data-network="${network}"]`;
const problem = () => textOf(browser, '[data-testid="event-problem"]');

test('pasted JSON with a mistake names the line and the field', async () => {
  await openPage('tester', 'Tester');
  await until(browser, async () => (await browser.$$('[data-testid="config-preview"]')).length === 3, 10000, 'the sample previews');
  await browser.$('[data-testid="tab-json"]').click();
  await paste('{\n  "event_id": "qa-1",\n  "name": "purchase"\n  "player_id": "p1"\n}');
  await until(browser, async () => (await browser.$('[data-testid="event-problem"]').isExisting()), 5000, 'the syntax problem');
  assert.match(await problem(), /^Line 4 · not valid JSON/);
  assert.equal((await browser.$$('[data-testid="config-preview"]')).length, 0, 'no preview of a broken event');

  await paste('{\n  "event_id": "qa-1",\n  "name": "purchase",\n  "player_id": "p1",\n  "consent": "full",\n  "occurred_at": "last tuesday"\n}');
  await until(browser, async () => /occurred_at/.test(await problem()), 5000, 'the field problem');
  assert.match(await problem(), /^Line 6 · occurred_at: /);
  assert.equal(await browser.$('[data-testid="event-json"]').getAttribute('aria-invalid'), 'true');
});

test('a good event shows each network its request, then a test send shows under its code only', async () => {
  const eventId = `qa-${Date.now()}`;
  await paste(JSON.stringify({
    event_id: eventId, name: 'purchase', occurred_at: new Date().toISOString(), player_id: 'qa-player', consent: 'full',
    email: 'QA.Player@Example.com', click_ids: { ttclid: 'tt-qa', rdt_cid: 'rd-qa', twclid: 'tw-qa' }, value: 4.99, currency: 'USD',
  }, null, 2));
  await until(browser, async () => (await browser.$$('[data-testid="preview-sent"]')).length === 3, 10000, 'three requests');
  assert.equal(await browser.$('[data-testid="event-problem"]').isExisting(), false);

  const tiktokRequest = await textOf(browser, `${preview('tiktok')} [data-testid="preview-request"]`);
  assert.match(tiktokRequest, /CSANDBOX0000000000001/, 'the pixel it goes to');
  assert.match(tiktokRequest, /tt-qa/, 'the click id');
  assert.doesNotMatch(tiktokRequest, /QA\.Player@Example\.com/i, 'the email leaves hashed');
  assert.match(tiktokRequest, /^POST http:\/\/127\.0\.0\.1:47811\/open_api\/v1\.3\/event\/track\//, 'the request line');
  assert.doesNotMatch(tiktokRequest, /sandbox-tiktok-token/, 'the token is hidden');
  const tiktokKeys = await browser.$$(`${preview('tiktok')} [data-testid="key-present"]`).map((k) => k.getText());
  assert.deepEqual(tiktokKeys.map((k) => k.replace(/^✓\s*/, '')), ['click id', 'email', 'external id']);
  assert.match(await textOf(browser, `${preview('x')} [data-testid="no-test-mode"]`), /no test mode/);
  assert.equal(await browser.$(`${preview('x')} [data-testid="test-send"]`).isExisting(), false, 'X is not offered a test send');
  await screenshot(browser, 'tester');

  const before = await sandboxStats();
  await browser.$(`${preview('tiktok')} [data-testid="test-code"]`).setValue('QA42');
  await browser.$(`${preview('tiktok')} [data-testid="send-test"]`).click();
  await until(browser, async () => await browser.$(`${preview('tiktok')} [data-testid="test-answer"]`).isExisting(), 15000, 'the answer');
  assert.match(await textOf(browser, `${preview('tiktok')} [data-testid="test-answer"]`), /accepted the event under the test code.*\(HTTP 200\)/);

  await browser.$(`${preview('reddit')} [data-testid="test-code"]`).setValue('qa-reddit-7');
  await browser.$(`${preview('reddit')} [data-testid="send-test"]`).click();
  await until(browser, async () => await browser.$(`${preview('reddit')} [data-testid="test-answer"]`).isExisting(), 15000, 'the answer');
  assert.match(await textOf(browser, `${preview('reddit')} [data-testid="test-answer"]`), /accepted/);

  const after = await sandboxStats();
  assert.equal(after.tiktok.test_events - before.tiktok.test_events, 1);
  assert.equal(after.reddit.test_events - before.reddit.test_events, 1);
  assert.equal(after.tiktok.accepted, before.tiktok.accepted, 'nothing counted as a live event');
  assert.equal(after.x.requests, before.x.requests, 'nothing reached X');

  await openPage('sandbox', 'Sandbox');
  await until(browser, async () => /1 under QA42/.test(await browser.$('[data-testid="pixels"]').getText()), 10000, 'the TikTok test code');
  assert.match(await browser.$('[data-testid="pixels"]').getText(), /1 under qa-reddit-7/);
  await openPage('log', 'Delivery log');
  await until(browser, async () => await browser.$('[data-testid="log-empty"]').isExisting(), 10000, 'an empty log');
});

test('the form reads the pasted event back, and consent none sends nothing anywhere', async () => {
  await openPage('tester', 'Tester');
  await browser.$('[data-testid="tab-json"]').click();
  await paste(JSON.stringify({ event_id: 'qa-2', name: 'game_launch', occurred_at: new Date().toISOString(), player_id: 'qa-p2',
    consent: 'anonymous', click_ids: { rdt_cid: 'rd-2' }, page_url: 'https://game.example/landing' }));
  await browser.$('[data-testid="tab-form"]').click();
  assert.equal(await browser.$('[data-testid="field-name"]').getValue(), 'game_launch');
  await until(browser, async () => (await browser.$$('[data-testid="preview-sent"]')).length === 1, 10000, 'Reddit only');
  assert.match(await textOf(browser, `${preview('tiktok')} [data-testid="preview-skipped"]`), /Not sent/);
  await screenshot(browser, 'tester-form');

  await browser.$('input[type="radio"][value="none"]').click();
  await until(browser, async () => (await browser.$$('[data-testid="preview-skipped"]')).length === 3, 10000, 'all skipped');
  // The field the form has no input for stays in the event.
  await browser.$('[data-testid="tab-json"]').click();
  assert.match(await browser.$('[data-testid="event-json"]').getValue(), /"page_url": "https:\/\/game\.example\/landing"/);
  assert.match(await browser.$('[data-testid="event-json"]').getValue(), /"consent": "none"/);
});
