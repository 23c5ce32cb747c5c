// Accessibility in the real window: axe-core on every page and on the dialogs and forms a user
// opens (no serious or critical violation), and the dialogs give focus back where it was.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { axeViolations, card, focusedId, freshDataDir, launch, until } from './app.mjs';

const dataDir = freshDataDir('a11y');
let app;
let browser;

before(async () => {
  app = await launch({ POSTBACK_DATA_DIR: dataDir });
  browser = app.browser;
  await until(browser, async () => (await browser.$$('[data-testid="integrations"] > li')).length === 3, 30000, 'the cards');
});

after(async () => {
  await app?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function assertClean(what) {
  const violations = await axeViolations(browser);
  assert.deepEqual(violations, [], `${what}: ${JSON.stringify(violations)}`);
}

test('every page has no serious or critical accessibility violation', async () => {
  for (const [page, title] of [['integrations', 'Integrations'], ['goals', 'Goals'], ['log', 'Delivery log'], ['sources', 'Sources'], ['tester', 'Tester'], ['sandbox', 'Sandbox']]) {
    await browser.$(`nav a[data-page="${page}"]`).click();
    await until(browser, async () => (await browser.$('h1').getText()) === title, 10000, `the ${title} page`);
    await until(browser, async () => !(await browser.$('[aria-busy="true"]').isExisting()), 10000, `${title} loaded`);
    await assertClean(`the ${title} page`);
  }
});

test('the forms and dialogs a user opens are accessible, and dialogs give focus back', async () => {
  await browser.$('nav a[data-page="integrations"]').click();
  await browser.$(`${card('tiktok')} [data-testid="connect"]`).click();
  await browser.$('#tiktok-token').waitForExist();
  await assertClean('the TikTok rotate form');
  await browser.keys('Escape');

  const opener = await browser.$('[data-testid="new-game"]');
  await opener.click();
  await browser.$('[data-testid="game-dialog"]').waitForExist();
  await assertClean('the new game dialog');
  await browser.keys('Escape');
  const focusedTestId = () => browser.execute(() => document.activeElement?.getAttribute('data-testid'));
  await until(browser, async () => (await focusedTestId()) === 'new-game', 5000, 'focus back on New game');

  await browser.$('[data-testid="workspace-button"]').click();
  await assertClean('the workspace menu');
  await browser.$('[data-testid="open-team-workspace"]').click();
  await browser.$('#team-name').waitForExist();
  assert.equal(await focusedId(browser), 'team-name', 'the dialog takes focus');
  await assertClean('the open-a-team-workspace dialog');
  await browser.keys('Escape');
  await until(browser, async () => !(await browser.$('[data-testid="team-dialog"]').isExisting()), 5000, 'the dialog closed');
  // Its opener was in the menu, which closed: focus goes back to the workspace button.
  await until(browser, async () => (await focusedTestId()) === 'workspace-button', 5000, 'focus on the workspace button');
});
