// End to end: the app beside a running `postback serve` on the same data directory does not
// deliver too; it says who delivers (pid) and keeps setting up and reading.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { Session, startDriver } from './webdriver.mjs';

const root = resolve(import.meta.dirname, '../..');
const application = resolve(root, process.env.POSTBACK_APP ?? 'target/debug/postback-desk');
const cli = resolve(root, 'target/debug/postback');
const dataDir = mkdtempSync(join(tmpdir(), 'postback-e2e-writer-'));
let serve;
let driver;
let session;

before(async () => {
  assert.ok(existsSync(cli), `${cli} is missing: build it first (cargo build -p postback)`);
  serve = spawn(cli, ['--data-dir', dataDir, 'serve'], { stdio: 'ignore' });
  const lock = join(dataDir, 'postback.lock');
  for (let i = 0; i < 200 && !(existsSync(lock) && readFileSync(lock, 'utf8').startsWith(`${serve.pid}\n`)); i++) {
    await sleep(25);
  }
  driver = await startDriver({ POSTBACK_DATA_DIR: dataDir });
  session = await Session.start(application);
});

after(async () => {
  await session?.close();
  driver?.kill();
  serve?.kill();
  rmSync(dataDir, { recursive: true, force: true });
});

test('beside a running postback serve the window says delivery runs there, and still lists the integrations', async () => {
  const banner = await session.waitFor(async () => session.text(await session.find('[data-testid="engine-banner"]')));
  assert.match(banner, /Delivery runs in another process/);
  assert.match(banner, new RegExp(`postback serve, pid ${serve.pid}`));
  await session.waitFor(async () => (await session.findAll('[data-testid="integrations"] > li')).length === 3);
});
