// End to end in the real window: the built app under Xvfb, driven through tauri-driver +
// WebKitWebDriver. The Integrations page must list the three networks from the database.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { Session, startDriver } from './webdriver.mjs';

const root = resolve(import.meta.dirname, '../..');
const application = resolve(root, process.env.POSTBACK_APP ?? 'target/debug/postback-desk');
const dataDir = mkdtempSync(join(tmpdir(), 'postback-e2e-'));
let driver;
let session;
let startupMs;

before(async () => {
  assert.ok(existsSync(application), `the app binary ${application} is missing: build it first (cargo build -p postback-desk)`);
  assert.ok(process.env.DISPLAY, 'no DISPLAY: run under xvfb-run');
  assert.ok(process.env.DBUS_SESSION_BUS_ADDRESS, 'no session bus: run under scripts/with-keyring.sh');
  // Connect X opens `$BROWSER <url>`: a scripted user who approves on the consent page.
  const browser = `${process.execPath} ${resolve(import.meta.dirname, 'scripted-browser.mjs')}`;
  driver = await startDriver({ POSTBACK_DATA_DIR: dataDir, BROWSER: browser });
  const started = performance.now();
  session = await Session.start(application);
  await session.waitFor(async () => (await session.findAll('[data-testid="integrations"] > li')).length === 3);
  startupMs = Math.round(performance.now() - started);
  console.log(`window start-up to first painted integrations: ${startupMs} ms`);
});

after(async () => {
  await session?.close();
  driver?.kill();
  rmSync(dataDir, { recursive: true, force: true });
});

test('the Integrations page lists TikTok Ads, Reddit Ads and X Ads of the Sandbox Game', async () => {
  const game = await session.text(await session.find('[data-testid="game-name"]'));
  assert.equal(game, 'Sandbox Game');
  const cards = await session.findAll('[data-testid="integrations"] > li');
  const networks = await Promise.all(cards.map((c) => session.attribute(c, 'data-network')));
  assert.deepEqual(networks, ['tiktok', 'reddit', 'x']);
  const texts = await Promise.all(cards.map((c) => session.text(c)));
  for (const [i, name] of ['TikTok Ads', 'Reddit Ads', 'X Ads'].entries()) {
    assert.match(texts[i], new RegExp(name));
    assert.match(texts[i], /Connected/);
    assert.match(texts[i], /Sandbox/);
  }
});

test('the app created its database in POSTBACK_DATA_DIR', () => {
  assert.ok(existsSync(join(dataDir, 'postback.db')));
});

const focusedId = () => session.execute('return document.activeElement && document.activeElement.id');

const card = (network) => `[data-testid="integrations"] > li[data-network="${network}"]`;

async function cardText(network) {
  return session.text(await session.find(card(network)));
}

test('rotating TikTok credentials: a refused token names the field, the accepted one is saved', async () => {
  await session.click(await session.find(`${card('tiktok')} [data-testid="connect"]`));
  const token = await session.waitFor(() => session.find('#tiktok-token'));
  assert.equal(await focusedId(), 'tiktok-pixel', 'opening the form moves focus to its first field');
  await session.type(token, 'cut-off-token');
  await session.type(await session.find('#tiktok-test_code'), 'TEST42');
  await session.click(await session.find(`${card('tiktok')} button[type="submit"]`));
  const error = await session.waitFor(async () => session.text(await session.find('#tiktok-token-error')));
  assert.match(error, /truncated or revoked/);
  assert.equal(await focusedId(), 'tiktok-token', 'focus moves to the field to fix');

  await session.type(await session.find('#tiktok-token'), 'sandbox-tiktok-token');
  await session.click(await session.find(`${card('tiktok')} button[type="submit"]`));
  const notice = await session.waitFor(async () => session.text(await session.find(`${card('tiktok')} [data-testid="notice"]`)));
  assert.match(notice, /accepted the test event/);
  assert.match(await cardText('tiktok'), /Connected/);
  // The token went to the keychain: no file of the database holds it, nor the test code.
  const bytes = readdirSync(dataDir).map((f) => readFileSync(join(dataDir, f)).toString('latin1')).join('');
  assert.ok(!bytes.includes('sandbox-tiktok-token') && !bytes.includes('TEST42'));
});

test('reconnecting X: authorise in the browser, then the pixel id', async () => {
  await session.click(await session.find(`${card('x')} [data-testid="connect"]`));
  const useSandbox = await session.waitFor(async () => {
    const buttons = await session.findAll(`${card('x')} button.link`);
    return buttons[0];
  });
  await session.click(useSandbox);
  await session.click(await session.find(`${card('x')} button[type="submit"]`));
  await session.waitFor(() => session.find('#x-pixel'), 30000);
  assert.equal(await session.execute('return document.getElementById("x-pixel").value'), 'sbx01');
  assert.equal(await focusedId(), 'x-pixel', 'after authorising, focus is on the pixel id');
  await session.click(await session.find(`${card('x')} button[type="submit"]`));
  const notice = await session.waitFor(async () => session.text(await session.find(`${card('x')} [data-testid="notice"]`)));
  assert.match(notice, /X accepted the connection/);
});

test('disconnecting Reddit asks first and removes the config; connecting it again on the sandbox works from the keyboard', async () => {
  await session.click(await session.find(`${card('reddit')} [data-testid="disconnect"]`));
  const confirm = await session.waitFor(() => session.find(`${card('reddit')} button.danger`));
  const focusedText = await session.execute('return document.activeElement.textContent.trim()');
  assert.equal(focusedText, 'Keep it', 'the confirmation takes focus on its safe choice');
  await session.click(confirm);
  await session.waitFor(async () => /Not connected/.test(await cardText('reddit')));

  // Connect it again, on the sandbox (the default on a game that demos there), keyboard only.
  await session.click(await session.find(`${card('reddit')} [data-testid="connect"]`));
  const pixel = await session.waitFor(() => session.find('#reddit-pixel'));
  assert.equal(await focusedId(), 'reddit-pixel');
  await session.type(pixel, 'a2_demo2026');
  const sandboxBox = await session.execute(`return document.querySelector('${card('reddit')} input[type=checkbox]').checked`);
  assert.equal(sandboxBox, true);
  await session.click(await session.find(`${card('reddit')} button.link`));
  await session.type(await session.find('#reddit-test_code'), 't2_demo\uE007'); // Enter submits
  const notice = await session
    .waitFor(async () => session.text(await session.find(`${card('reddit')} [data-testid="notice"]`)))
    .catch(async (e) => assert.fail(`${e.message}\n${await cardText('reddit')}`));
  assert.match(notice, /accepted the test event/);
  assert.match(await cardText('reddit'), /Connected[\s\S]*a2_demo2026/);
});

test('a screenshot of the window can be taken', async () => {
  const png = await session.screenshot();
  assert.equal(png.subarray(1, 4).toString(), 'PNG');
  if (process.env.SCREENSHOT_OUT) writeFileSync(process.env.SCREENSHOT_OUT, png);
});
