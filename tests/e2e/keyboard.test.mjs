// Keyboard use of the real window: on every page, Tab alone reaches every action a mouse can
// (each visible, enabled control; a radio group is one stop), each with a focus ring a user can see; a modal dialog keeps
// Tab inside itself and gives focus back to its opener when it closes.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { freshDataDir, launch, until } from './app.mjs';

const dataDir = freshDataDir('keyboard');
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

/** Tags every control a mouse user could operate now and returns their descriptions. */
const tagControls = () =>
  browser.execute(() => {
    const css = 'a[href], button, input, select, textarea, [tabindex]:not([tabindex="-1"])';
    const shown = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
    // A control drawn invisibly (a radio styled as its label) counts through its label.
    const operable = (el) => !el.disabled && el.tabIndex >= 0 && !el.closest('[inert]') && (shown(el) || (el.labels?.[0] && shown(el.labels[0])));
    const describe = (el) => `${el.tagName.toLowerCase()} "${(el.getAttribute('aria-label') || el.labels?.[0]?.textContent || el.textContent || el.name || el.id || '').trim().slice(0, 40)}"`;
    // A radio group is one stop for Tab (arrow keys move inside it): one control per group.
    const controls = [];
    const groups = new Map();
    for (const el of document.querySelectorAll(css)) {
      if (!operable(el)) continue;
      const group = el.type === 'radio' && el.name ? `radio:${el.name}` : null;
      if (group && groups.has(group)) {
        el.setAttribute('data-kb', groups.get(group));
        continue;
      }
      const id = String(controls.length);
      if (group) groups.set(group, id);
      el.setAttribute('data-kb', id);
      controls.push(group ? `radio group "${el.name}"` : describe(el));
    }
    return controls;
  });

/** What Tab focused: its tag, and whether a user can see where focus is. */
const focusNow = () =>
  browser.execute(() => {
    const el = document.activeElement;
    if (!el || el === document.body) return null;
    // The ring is on the first box that is drawn: the control, or the label drawn for it.
    let ringed = false;
    for (let box = el; box && box !== document.body; box = box.parentElement) {
      const style = getComputedStyle(box);
      const drawn = Number(style.opacity) > 0 && box.getBoundingClientRect().width > 2;
      if (!drawn && box.tagName !== 'LABEL') continue;
      ringed = (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0) || style.boxShadow !== 'none';
      break;
    }
    return { kb: el.getAttribute('data-kb'), ringed, what: `${el.tagName.toLowerCase()} ${el.getAttribute('data-testid') ?? el.id ?? ''}` };
  });

async function tabThroughPage(page, title) {
  await browser.$(`nav a[data-page="${page}"]`).click();
  await until(browser, async () => (await browser.$('h1').getText()) === title, 10000, `the ${title} page`);
  await until(browser, async () => !(await browser.$('[aria-busy="true"]').isExisting()), 10000, `${title} loaded`);
  const controls = await tagControls();
  assert.ok(controls.length > 3, `${title}: controls found`);
  const reached = new Set();
  const unringed = [];
  // Twice the controls' count is enough for one full round through the page.
  for (let i = 0; i < controls.length * 2 + 10 && reached.size < controls.length; i++) {
    await browser.keys('Tab');
    const focus = await focusNow();
    if (!focus || focus.kb === null) continue;
    reached.add(Number(focus.kb));
    if (!focus.ringed) unringed.push(focus.what);
  }
  const missed = controls.filter((_, i) => !reached.has(i));
  assert.deepEqual(missed, [], `${title}: controls Tab never reaches`);
  assert.deepEqual([...new Set(unringed)], [], `${title}: focused with no visible focus ring`);
}

for (const [page, title] of [['integrations', 'Integrations'], ['goals', 'Goals'], ['log', 'Delivery log'], ['sources', 'Sources'], ['sandbox', 'Sandbox']]) {
  test(`Tab reaches every control of ${title}, each with a visible focus ring`, async () => {
    await tabThroughPage(page, title);
  });
}

test('a modal dialog keeps Tab inside itself and gives focus back to its opener', async () => {
  await browser.$('nav a[data-page="integrations"]').click();
  await browser.$('[data-testid="new-game"]').click();
  const dialog = '[data-testid="game-dialog"]';
  await browser.$(dialog).waitForExist();
  for (let i = 0; i < 12; i++) {
    await browser.keys('Tab');
    const inside = await browser.execute((css) => document.querySelector(css)?.contains(document.activeElement) ?? false, dialog);
    assert.ok(inside, `Tab ${i + 1} left the dialog`);
  }
  await browser.keys('Escape');
  await until(browser, async () => !(await browser.$(dialog).isExisting()), 5000, 'the dialog closed');
  const focused = await browser.execute(() => document.activeElement?.getAttribute('data-testid'));
  assert.equal(focused, 'new-game');
});
