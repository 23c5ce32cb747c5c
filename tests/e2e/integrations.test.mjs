// End to end in the real window: the built app under Xvfb, driven through tauri-driver +
// WebKitWebDriver with WebdriverIO. Credentials: rotation, Connect X, disconnect/reconnect.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { card, focusedId, freshDataDir, launch, screenshot, textOf, until } from './app.mjs';

const dataDir = freshDataDir('integrations');
let app;
let browser;

before(async () => {
  // Connect X opens `$BROWSER <url>`: a scripted user who approves on the consent page.
  const scripted = `${process.execPath} ${resolve(import.meta.dirname, 'scripted-browser.mjs')}`;
  app = await launch({ POSTBACK_DATA_DIR: dataDir, BROWSER: scripted });
  browser = app.browser;
  await until(browser, async () => (await browser.$$('[data-testid="integrations"] > li')).length === 3, 30000, 'the cards');
  console.log(`window start-up to first painted integrations: ${Math.round(performance.now() - app.started)} ms`);
});

after(async () => {
  await app?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const cardText = (network) => textOf(browser, card(network));

test('the Integrations page lists TikTok Ads, Reddit Ads and X Ads of the Sandbox Game', async () => {
  const game = await browser.execute(() => document.querySelector('[data-testid="game-name"]').textContent);
  assert.equal(game, 'Sandbox Game');
  const cards = await browser.$$('[data-testid="integrations"] > li');
  const networks = [];
  for (const c of cards) networks.push(await c.getAttribute('data-network'));
  assert.deepEqual(networks, ['tiktok', 'reddit', 'x']);
  for (const [network, name] of [['tiktok', 'TikTok Ads'], ['reddit', 'Reddit Ads'], ['x', 'X Ads']]) {
    const text = await cardText(network);
    assert.match(text, new RegExp(name));
    assert.match(text, /Connected/);
    assert.match(text, /Sandbox/);
    assert.match(text, /Enabled/);
  }
  await screenshot(browser, 'integrations');
});

test('the app created its database in POSTBACK_DATA_DIR', () => {
  assert.ok(existsSync(join(dataDir, 'postback.db')));
});

test('rotating TikTok credentials: a refused token names the field, the accepted one is saved', async () => {
  await browser.$(`${card('tiktok')} [data-testid="connect"]`).click();
  const token = await browser.$('#tiktok-token');
  await token.waitForExist();
  assert.equal(await focusedId(browser), 'tiktok-pixel', 'opening the form moves focus to its first field');
  // Trigger events are picked from the game's events, at least one.
  const boxes = await browser.$$('#tiktok-trigger_events input[type="checkbox"]');
  const picked = {};
  for (const box of boxes) picked[await box.getAttribute('value')] = await box.isSelected();
  assert.deepEqual(picked, { game_launch: true, purchase: true });
  for (const box of boxes) await box.click();
  await browser.$(`${card('tiktok')} button[type="submit"]`).click();
  assert.match(await textOf(browser, '#tiktok-trigger_events-error'), /at least one/);
  for (const box of boxes) await box.click();
  await token.setValue('cut-off-token');
  await browser.$('#tiktok-test_code').setValue('TEST42');
  await browser.$(`${card('tiktok')} button[type="submit"]`).click();
  const error = await textOf(browser, '#tiktok-token-error');
  assert.match(error, /truncated or revoked/);
  assert.equal(await focusedId(browser), 'tiktok-token', 'focus moves to the field to fix');

  await browser.$('#tiktok-token').setValue('sandbox-tiktok-token');
  await browser.$(`${card('tiktok')} button[type="submit"]`).click();
  const notice = await textOf(browser, `${card('tiktok')} [data-testid="notice"]`);
  assert.match(notice, /accepted the test event/);
  assert.match(await cardText('tiktok'), /Connected/);
  // The token went to the keychain: no file of the database holds it, nor the test code.
  const bytes = readdirSync(dataDir).map((f) => readFileSync(join(dataDir, f)).toString('latin1')).join('');
  assert.ok(!bytes.includes('sandbox-tiktok-token') && !bytes.includes('TEST42'));
});

test('reconnecting X: authorise in the browser, then the pixel id', async () => {
  await browser.$(`${card('x')} [data-testid="connect"]`).click();
  const useSandbox = await browser.$(`${card('x')} button.link`);
  await useSandbox.waitForExist();
  await useSandbox.click();
  await browser.$(`${card('x')} button[type="submit"]`).click();
  const pixel = await browser.$('#x-pixel');
  await pixel.waitForExist({ timeout: 30000 });
  assert.equal(await pixel.getValue(), 'sbx01');
  assert.equal(await focusedId(browser), 'x-pixel', 'after authorising, focus is on the pixel id');
  await browser.$(`${card('x')} button[type="submit"]`).click();
  const notice = await textOf(browser, `${card('x')} [data-testid="notice"]`);
  assert.match(notice, /X accepted the connection/);
});

test('disconnecting Reddit asks first and removes the config; connecting it again on the sandbox works from the keyboard', async () => {
  await browser.$(`${card('reddit')} [data-testid="disconnect"]`).click();
  const confirm = await browser.$(`${card('reddit')} button.danger`);
  await confirm.waitForExist();
  assert.equal(await browser.execute(() => document.activeElement.textContent.trim()), 'Keep it', 'the confirmation takes focus on its safe choice');
  assert.match(await cardText('reddit'), /No conversions are waiting/);
  await confirm.click();
  await until(browser, async () => /Not connected/.test(await cardText('reddit')), 20000, 'Reddit disconnected');

  // Connect it again, on the sandbox (the default on a game that demos there), keyboard only.
  await browser.$(`${card('reddit')} [data-testid="connect"]`).click();
  const pixel = await browser.$('#reddit-pixel');
  await pixel.waitForExist();
  assert.equal(await focusedId(browser), 'reddit-pixel');
  await pixel.setValue('a2_demo2026');
  assert.equal(await browser.$(`${card('reddit')} label.check input`).isSelected(), true);
  await browser.$(`${card('reddit')} button.link`).click();
  await until(browser, async () => (await browser.$('#reddit-token').getValue()) !== '', 5000, 'the demo token');
  await browser.$('#reddit-test_code').setValue('t2_demo');
  await browser.keys('Enter'); // Enter submits
  const notice = await textOf(browser, `${card('reddit')} [data-testid="notice"]`);
  assert.match(notice, /accepted the test event/);
  assert.match(await cardText('reddit'), /Connected[\s\S]*a2_demo2026/);
});

test('Esc closes an open form', async () => {
  await browser.$(`${card('tiktok')} [data-testid="connect"]`).click();
  await browser.$('#tiktok-token').waitForExist();
  await browser.keys('Escape');
  await until(browser, async () => !(await browser.$('#tiktok-token').isExisting()), 5000, 'the form to close');
  assert.equal(await browser.execute(() => document.activeElement.dataset.testid), 'connect', 'focus back on the card');
});
