// Drives the real app window: tauri-driver (WebKitWebDriver underneath) on loopback, a
// WebdriverIO session per app launch, and the helpers the end-to-end tests share.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';

export const root = resolve(import.meta.dirname, '../..');
export const application = resolve(root, process.env.POSTBACK_APP ?? 'target/debug/postback-desk');
export const cli = resolve(root, process.env.POSTBACK_CLI ?? 'target/debug/postback');
const DRIVER_PORT = Number(process.env.TAURI_DRIVER_PORT ?? 4444);
// WebdriverIO is a dev dependency of the UI package.
const { remote } = await import(pathToFileURL(createRequire(resolve(root, 'ui/package.json')).resolve('webdriverio')).href);

export function freshDataDir(name) {
  return mkdtempSync(join(tmpdir(), `postback-e2e-${name}-`));
}

async function startDriver(env) {
  const driver = spawn(process.env.TAURI_DRIVER ?? 'tauri-driver', ['--port', String(DRIVER_PORT), '--native-port', String(DRIVER_PORT + 1)], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  for (let i = 0; i < 100; i++) {
    if (driver.exitCode !== null) throw new Error(`tauri-driver exited with ${driver.exitCode}`);
    try {
      await fetch(`http://127.0.0.1:${DRIVER_PORT}/status`);
      return driver;
    } catch {
      await sleep(100);
    }
  }
  driver.kill();
  throw new Error('tauri-driver did not start within 10 s');
}

/** Launches the app on `env` (POSTBACK_DATA_DIR, BROWSER, …) and returns a WebdriverIO browser. */
export async function launch(env) {
  assert.ok(existsSync(application), `the app binary ${application} is missing: build it first (cargo build -p postback-desk)`);
  assert.ok(process.env.DISPLAY, 'no DISPLAY: run under xvfb-run');
  assert.ok(process.env.DBUS_SESSION_BUS_ADDRESS, 'no session bus: run under scripts/with-keyring.sh');
  const driver = await startDriver(env);
  const started = performance.now();
  const browser = await remote({
    hostname: '127.0.0.1',
    port: DRIVER_PORT,
    logLevel: 'warn',
    capabilities: { browserName: 'wry', 'tauri:options': { application }, 'wdio:enforceWebDriverClassic': true },
  });
  return {
    browser,
    started,
    async close() {
      // Closing occasionally drops the connection with WebKitWebDriver: not a test failure, but
      // then the app may outlive its driver and, holding the single-instance lock, keep every
      // later launch from starting. It is stopped here, whatever happened.
      await browser.deleteSession().catch(() => {});
      driver.kill();
      await stopLeftoverApp();
    },
  };
}

/** Stops an instance of the app under test still running (TERM, then KILL after 5 s). */
async function stopLeftoverApp() {
  const pattern = `^${application}( |$)`;
  const running = () => spawnSync('pgrep', ['-f', pattern]).status === 0;
  if (!running()) return;
  spawnSync('pkill', ['-TERM', '-f', pattern]);
  for (let waited = 0; waited < 5000 && running(); waited += 100) await sleep(100);
  if (running()) spawnSync('pkill', ['-KILL', '-f', pattern]);
}

/** The card of one network on the Integrations page. */
export const card = (network) => `[data-testid="integrations"] > li[data-network="${network}"]`;

export async function textOf(browser, css) {
  const el = await browser.$(css);
  await el.waitForExist({ timeout: 20000 });
  return el.getText();
}

export const focusedId = (browser) => browser.execute(() => document.activeElement && document.activeElement.id);

/** Waits for `check` to return something truthy (polling; its errors count as "not yet"). */
export async function until(browser, check, timeout = 20000, message = 'condition') {
  let last;
  await browser.waitUntil(
    async () => {
      try {
        return await check();
      } catch (e) {
        last = e;
        return false;
      }
    },
    { timeout, interval: 100, timeoutMsg: `timed out waiting for ${message}${last ? `: ${last.message}` : ''}` },
  );
}

/** Runs the `postback` CLI on a data directory and returns its parsed stdout JSON. */
export async function postback(dataDir, args) {
  const child = spawn(cli, ['--data-dir', dataDir, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const code = await new Promise((done) => child.on('exit', done));
  assert.equal(code, 0, `postback ${args.join(' ')} failed: ${err}`);
  return JSON.parse(out);
}

/** The app's built-in sandbox: what the simulated networks received. */
export async function sandboxStats() {
  const response = await fetch('http://127.0.0.1:47811/__sandbox/stats');
  return response.json();
}

export async function screenshot(browser, name) {
  const dir = process.env.SCREENSHOT_DIR;
  if (dir) await browser.saveScreenshot(join(dir, `${name}.png`));
}

// axe-core, from the UI package's dev dependencies, injected into the window under test.
const axeSource = (await import('node:fs')).readFileSync(
  createRequire(resolve(root, 'ui/package.json')).resolve('axe-core/axe.min.js'),
  'utf8',
);

/** The serious and critical accessibility violations axe-core finds in the window now. */
export async function axeViolations(browser) {
  await browser.execute(axeSource);
  const found = await browser.executeAsync((done) => {
    window.axe
      .run(document, { resultTypes: ['violations'] })
      .then((r) => done(r.violations.map((v) => ({ id: v.id, impact: v.impact, where: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }))))
      .catch((e) => done([{ id: 'axe-failed', impact: 'critical', where: [String(e)] }]));
  });
  return found.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}
