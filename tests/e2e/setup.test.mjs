// End to end, the set-up side in the real window: a new game, two goals ("First purchase" once
// per player, "Any launch"), X on the sandbox with both goals mapped (a bad tag first), two
// purchases of one player through the CLI → X receives the first purchase once; TikTok
// disabled → its events are not queued. Screenshots of each page when SCREENSHOT_DIR is set.
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { card, focusedId, freshDataDir, launch, postback, sandboxStats, screenshot, textOf, until } from './app.mjs';

const dataDir = freshDataDir('setup');
let app;
let browser;

before(async () => {
  const scripted = `${process.execPath} ${resolve(import.meta.dirname, 'scripted-browser.mjs')}`;
  app = await launch({ POSTBACK_DATA_DIR: dataDir, BROWSER: scripted });
  browser = app.browser;
  await until(browser, async () => (await browser.$$('[data-testid="integrations"] > li')).length === 3, 30000, 'the cards');
});

after(async () => {
  await app?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const currentGame = () => browser.execute(() => document.querySelector('[data-testid="game-name"]').textContent);

test('a new game: its name is checked, it becomes current and starts with nothing connected', async () => {
  await browser.$('[data-testid="new-game"]').click();
  const name = await browser.$('#game-name-input');
  await name.waitForExist();
  assert.equal(await focusedId(browser), 'game-name-input', 'the dialog takes focus');
  await browser.keys('Enter');
  assert.match(await textOf(browser, '#game-name-error'), /is required/);
  await name.setValue('Moon Miner');
  await browser.keys('Enter');
  await until(browser, async () => (await currentGame()) === 'Moon Miner', 10000, 'the new game');
  const cards = await browser.$$('[data-testid="integrations"] > li');
  for (const c of cards) assert.match(await c.getText(), /Not connected/);
});

test('goals: "First purchase" once per player and "Any launch", in order', async () => {
  const started = performance.now();
  await browser.$('nav a[data-page="goals"]').click();
  await until(browser, async () => (await browser.$('h1').getText()) === 'Goals', 10000, 'the Goals page');
  console.log(`page switch Integrations → Goals: ${Math.round(performance.now() - started)} ms`);
  assert.match(await browser.getUrl(), /#\/goals$/);

  await browser.$('[data-testid="add-goal"]').click();
  await browser.$('#goal-name').waitForExist();
  await browser.$('#goal-name').setValue('First purchase');
  await browser.$('input[value="once_per_player"]').click();
  await browser.$('#goal-name').click();
  await browser.keys('Enter');
  await until(browser, async () => (await browser.$$('[data-testid="goals"] > li')).length === 1, 10000, 'the first goal');

  await browser.$('[data-testid="add-goal"]').click();
  await browser.$('#goal-name').setValue('Any launch');
  await browser.$('#goal-event').selectByAttribute('value', 'game_launch');
  await browser.$('button=Save goal').click();
  await until(browser, async () => (await browser.$$('[data-testid="goals"] > li')).length === 2, 10000, 'the second goal');
  const list = await browser.$('[data-testid="goals"]').getText();
  assert.match(list, /First purchase[\s\S]*purchase[\s\S]*Once per player[\s\S]*Any launch[\s\S]*game_launch[\s\S]*Every time/);
  await screenshot(browser, 'goals');
});

async function connectOnSandbox(network, pixel) {
  await browser.$(`${card(network)} [data-testid="connect"]`).click();
  const box = await browser.$(`${card(network)} label.check input`);
  await box.waitForExist();
  if (!(await box.isSelected())) await box.click();
  if (pixel && network !== 'x') await browser.$(`#${network}-pixel`).setValue(pixel);
  await browser.$(`${card(network)} button.link`).click();
  // The demo-token button asks the sandbox which token works: wait for it in the field.
  if (network !== 'x') {
    await until(browser, async () => (await browser.$(`#${network}-token`).getValue()) !== '', 5000, 'the demo token');
  }
  await browser.$(`${card(network)} button[type="submit"]`).click();
  if (network === 'x') {
    const pixelInput = await browser.$('#x-pixel');
    await pixelInput.waitForExist({ timeout: 30000 });
    await pixelInput.setValue(pixel);
    await browser.$(`${card('x')} button[type="submit"]`).click();
  }
  await until(browser, async () => /Connected/.test(await browser.$(card(network)).getText()), 30000, `${network} connected`);
}

test('X on the sandbox: unmapped goals are pointed out, a bad tag shows its error under the field, both get mapped', async () => {
  await browser.$('nav a[data-page="integrations"]').click();
  await until(browser, async () => (await browser.$$('[data-testid="integrations"] > li')).length === 3, 10000, 'the cards');
  await connectOnSandbox('x', 'sbx01');
  assert.match(await textOf(browser, `${card('x')} [data-gap="no_mapped_goals"]`), /No goal is mapped/);

  await browser.$(`${card('x')} [data-testid="fix-mapping"]`).click();
  const first = await browser.$('#tag-first-purchase');
  await first.waitForExist();
  await first.setValue('tw-bad');
  await browser.$(`${card("x")} [data-testid="tag-mapping"] button[type="submit"]`).click();
  assert.match(await textOf(browser, `tr[data-goal="first-purchase"] [data-testid="tag-error"]`), /tw-xxxxx-yyyyy/);
  assert.equal(await focusedId(browser), 'tag-first-purchase', 'focus on the tag to fix');
  await screenshot(browser, 'x-tag-mapping');

  await first.setValue('tw-sbx01-first');
  await browser.$('#tag-any-launch').setValue('tw-sbx01-launch');
  await browser.$(`${card("x")} [data-testid="tag-mapping"] button[type="submit"]`).click();
  assert.match(await textOf(browser, `${card('x')} [data-testid="notice"]`), /2 of 2 goals mapped/);
  assert.ok(!(await browser.$(`${card('x')} [data-testid="gap"]`).isExisting()), 'nothing missing any more');
});

test('two purchases of one player through the CLI: X receives the first purchase once, and no second', async () => {
  await connectOnSandbox('tiktok', 'CMOON00000001');
  const at = new Date().toISOString();
  const purchase = (id) =>
    JSON.stringify({ event_id: id, name: 'purchase', occurred_at: at, player_id: 'pilot-1', consent: 'full',
      click_ids: { ttclid: 'tt-1', twclid: 'tw-1' }, value: '4.99', currency: 'USD' });
  const file = join(dataDir, 'purchases.ndjson');
  writeFileSync(file, `${purchase('moon-1')}\n${purchase('moon-2')}\n`);
  const report = await postback(dataDir, ['import', file]);
  assert.equal(report.enqueued, 3, 'TikTok twice, X once');
  assert.equal(report.skipped.already_converted, 1);
  await until(browser, async () => {
    const stats = await sandboxStats();
    return stats.x.accepted === 1 && stats.tiktok.accepted === 2;
  }, 30000, 'the app to deliver');
  const stats = await sandboxStats();
  assert.equal(stats.x.distinct_event_ids, 1);
  assert.equal(stats.x.duplicates, 0);
});

test('disabling TikTok: its events are no longer queued', async () => {
  await browser.$(`${card('tiktok')} [data-testid="toggle-enabled"]`).click();
  await until(browser, async () => /Disabled/.test(await browser.$(card('tiktok')).getText()), 10000, 'TikTok disabled');
  const at = new Date().toISOString();
  const file = join(dataDir, 'later.ndjson');
  writeFileSync(file, JSON.stringify({ event_id: 'moon-3', name: 'purchase', occurred_at: at, player_id: 'pilot-2',
    consent: 'full', click_ids: { ttclid: 'tt-2', twclid: 'tw-2' } }));
  const report = await postback(dataDir, ['import', file]);
  assert.equal(report.enqueued, 1, 'X only');
  await screenshot(browser, 'integrations-setup');
});
