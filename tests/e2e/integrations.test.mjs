// End to end in the real window: the built app under Xvfb, driven through tauri-driver +
// WebKitWebDriver. The Integrations page must list the three networks from the database.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
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
  driver = await startDriver({ POSTBACK_DATA_DIR: dataDir });
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

test('a screenshot of the window can be taken', async () => {
  const png = await session.screenshot();
  assert.equal(png.subarray(1, 4).toString(), 'PNG');
  if (process.env.SCREENSHOT_OUT) writeFileSync(process.env.SCREENSHOT_OUT, png);
});
