// The .deb as a marketer gets it: installed with apt-get, the *installed* app started under
// Xvfb renders its window and the demo delivers to the sandbox; the CLI it ships runs; then
// the package is removed and leaves no program behind.
//
//   POSTBACK_DEB=target/release/bundle/deb/….deb xvfb-run -a bash scripts/with-keyring.sh \
//     node --test tests/package/
// (scripts/test.sh builds it with scripts/package.sh first; it needs root for apt-get.)
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { after, before, test } from 'node:test';

const deb = process.env.POSTBACK_DEB;
assert.ok(deb && existsSync(deb), `POSTBACK_DEB must name the built .deb (got ${deb})`);
const PACKAGE = execFileSync('dpkg-deb', ['--field', deb, 'Package'], { encoding: 'utf8' }).trim();
const APP = '/usr/bin/postback-desk';
const CLI = '/usr/bin/postback';
// app.mjs reads which binaries to drive from the environment when it loads.
process.env.POSTBACK_APP = APP;
process.env.POSTBACK_CLI = CLI;
const { card, freshDataDir, launch, sandboxStats, until } = await import('../e2e/app.mjs');

const apt = (...args) =>
  execFileSync('apt-get', ['-y', '-q', ...args], { encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
const dataDir = freshDataDir('installed');
let app;

before(() => {
  assert.ok(!existsSync(APP), `${APP} exists before the install: remove ${PACKAGE} first`);
  apt('install', '--no-install-recommends', resolve(deb));
});

after(async () => {
  await app?.close();
  rmSync(dataDir, { recursive: true, force: true });
  if (existsSync(APP)) apt('remove', PACKAGE);
});

test('the package holds the app, the CLI, a desktop entry and icons, and declares its libraries', () => {
  const files = execFileSync('dpkg', ['-L', PACKAGE], { encoding: 'utf8' }).split('\n');
  for (const wanted of [APP, CLI]) assert.ok(files.includes(wanted), `${wanted} in the package`);
  assert.ok(files.some((f) => /^\/usr\/share\/applications\/.+\.desktop$/.test(f)), 'a desktop entry');
  assert.ok(files.some((f) => /^\/usr\/share\/icons\/hicolor\/.+\.png$/.test(f)), 'icons');
  const depends = execFileSync('dpkg-deb', ['--field', deb, 'Depends'], { encoding: 'utf8' });
  for (const library of ['libwebkit2gtk-4.1-0', 'libgtk-3-0', 'xdg-utils']) assert.match(depends, new RegExp(library));
  assert.match(execFileSync(CLI, ['--version'], { encoding: 'utf8' }), /^postback \d+\.\d+\.\d+/);
});

test('the installed app opens its window and the demo delivers to the sandbox', async () => {
  app = await launch({ POSTBACK_DATA_DIR: dataDir });
  const { browser } = app;
  await until(browser, async () => (await browser.$$('[data-testid="integrations"] > li')).length === 3, 30000, 'the cards');
  assert.match(await browser.$(`${card('tiktok')} h2`).getText(), /TikTok/);
  const accepted = async () => {
    const stats = await sandboxStats();
    return stats.tiktok.accepted + stats.reddit.accepted + stats.x.accepted;
  };
  assert.equal(await accepted(), 0, 'the sandbox has received nothing before the demo');
  await browser.$('[data-testid="demo-banner-toggle"]').click();
  await until(browser, async () => (await accepted()) >= 5, 30000, 'events accepted by the sandbox');
  await browser.$('[data-testid="demo-banner-toggle"]').click();
  await browser.$('nav a[data-page="log"]').click();
  await until(browser, async () => (await browser.$$('[data-status="success"]')).length > 0, 20000, 'delivered rows in the log');
});

test('removing the package removes the app and the CLI', async () => {
  await app?.close();
  app = null;
  apt('remove', PACKAGE);
  assert.ok(!existsSync(APP) && !existsSync(CLI));
});
