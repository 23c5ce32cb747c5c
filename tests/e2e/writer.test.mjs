// End to end: the app beside a running `postback serve` on the same data directory does not
// deliver too; it says who delivers (pid) and keeps setting up and reading.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { cli, freshDataDir, launch, textOf, until } from './app.mjs';

const dataDir = freshDataDir('writer');
let serve;
let app;

before(async () => {
  assert.ok(existsSync(cli), `${cli} is missing: build it first (cargo build -p postback)`);
  serve = spawn(cli, ['--data-dir', dataDir, 'serve'], { stdio: 'ignore' });
  const lock = join(dataDir, 'postback.lock');
  for (let i = 0; i < 200 && !(existsSync(lock) && readFileSync(lock, 'utf8').startsWith(`${serve.pid}\n`)); i++) {
    await sleep(25);
  }
  app = await launch({ POSTBACK_DATA_DIR: dataDir });
});

after(async () => {
  await app?.close();
  serve?.kill();
  rmSync(dataDir, { recursive: true, force: true });
});

test('beside a running postback serve the window says delivery runs there, and still lists the integrations', async () => {
  const { browser } = app;
  const banner = await textOf(browser, '[data-testid="engine-banner"]');
  assert.match(banner, /Delivery runs in another process/);
  assert.match(banner, new RegExp(`postback serve, pid ${serve.pid}`));
  await until(browser, async () => (await browser.$$('[data-testid="integrations"] > li')).length === 3, 20000, 'the cards');
});
