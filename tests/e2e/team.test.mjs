// End to end on a team workspace: the real window opens a team workspace by its PostgreSQL URL
// (the throwaway cluster of scripts/with-postgres.sh), connects TikTok there (sealed for the
// workers), two `postback serve` workers take events over HTTPS and deliver them to the app's
// sandbox; the window's log shows them live, a card names its worker and the takeover when that
// worker is killed, and a token rotated in the window reaches the running workers.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { card, cli, freshDataDir, launch, screenshot, textOf, until } from './app.mjs';

const DATABASE = process.env.POSTBACK_TEST_DATABASE_URL;
const SANDBOX = 'http://127.0.0.1:47811';
const dataDir = freshDataDir('team');
const serverDir = mkdtempSync(join(tmpdir(), 'postback-e2e-workers-'));
const keyFile = join(serverDir, 'workspace.key');
const [certFile, certKey] = [join(serverDir, 'ingest.crt'), join(serverDir, 'ingest.key')];
const workers = [];
let app;
let browser;
let ingestToken;

/** The CLI on the team workspace; its stdout. */
function run(args) {
  return execFileSync(cli, ['--database', DATABASE, '--data-dir', serverDir, ...args], { encoding: 'utf8' });
}

async function freePort() {
  const server = createServer();
  await new Promise((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address();
  await new Promise((done) => server.close(done));
  return port;
}

/** A worker process serving HTTPS on all addresses; its pid and port. */
async function startWorker(name) {
  const port = await freePort();
  const dir = mkdtempSync(join(serverDir, `${name}-`));
  const child = spawn(
    cli,
    ['--database', DATABASE, '--data-dir', dir, '--key-file', keyFile, 'serve', '--retry-base', '100ms',
      '--ingest', `0.0.0.0:${port}`, '--tls-cert', certFile, '--tls-key', certKey],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, POSTBACK_INGEST_TOKEN: '' } },
  );
  let log = '';
  child.stderr.on('data', (d) => (log += d));
  const worker = { child, port, pid: child.pid, log: () => log };
  workers.push(worker);
  return worker;
}

/** POSTs one purchase to a worker's ingest over HTTPS (trusting its certificate only). */
function post(worker, eventId) {
  const body = JSON.stringify({ event_id: eventId, name: 'purchase', occurred_at: new Date().toISOString(),
    player_id: 'team-player', consent: 'full', click_ids: { ttclid: 'tt-team' } });
  return new Promise((done, fail) => {
    const request = https.request(
      { host: '127.0.0.1', port: worker.port, path: '/v1/events', method: 'POST', ca: readFileSync(certFile),
        headers: { authorization: `Bearer ${ingestToken}`, 'content-type': 'application/json' } },
      (response) => {
        let text = '';
        response.on('data', (d) => (text += d));
        response.on('end', () => done({ status: response.statusCode, text }));
      },
    );
    request.on('error', fail);
    request.end(body);
  });
}

async function tiktokAccepted() {
  const stats = await (await fetch(`${SANDBOX}/__sandbox/stats`)).json();
  return stats.tiktok?.accepted ?? 0;
}

async function openPage(page, title) {
  await browser.$(`nav a[data-page="${page}"]`).click();
  await until(browser, async () => (await browser.$('h1').getText()) === title, 10000, `the ${title} page`);
}

before(async () => {
  assert.ok(DATABASE, 'run under scripts/with-postgres.sh (POSTBACK_TEST_DATABASE_URL)');
  run(['workspace', 'init', '--key-file', keyFile]);
  ingestToken = run(['workspace', 'ingest-token', '--rotate']).trim();
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-keyout', certKey, '-out', certFile], { stdio: 'ignore' });
  app = await launch({ POSTBACK_DATA_DIR: dataDir });
  browser = app.browser;
  await until(browser, async () => (await browser.$$('[data-testid="integrations"] > li')).length === 3, 30000, 'the cards');
});

after(async () => {
  for (const w of workers) w.child.kill('SIGKILL');
  await fetch(`${SANDBOX}/__sandbox/reset`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }).catch(() => {});
  await app?.close();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(serverDir, { recursive: true, force: true });
});

test('the window opens a team workspace by its URL and says which workspace is open', async () => {
  assert.equal(await textOf(browser, '[data-testid="workspace-name"]'), 'Local workspace');
  await browser.$('[data-testid="workspace-button"]').click();
  await browser.$('[data-testid="open-team-workspace"]').click();
  await browser.$('#team-name').waitForExist();
  await browser.$('#team-name').setValue('Studio team');
  await browser.$('#team-url').setValue(DATABASE);
  await screenshot(browser, 'team-open');
  await browser.$('[data-testid="team-open"]').click();
  // The switch reloads every page on the team workspace.
  await until(browser, async () => (await textOf(browser, '[data-testid="workspace-name"]')) === 'Studio team', 30000,
    'the team workspace open');
  await until(browser, async () => /No worker of this team workspace is running/.test(await textOf(browser, '[data-testid="engine-banner"]')),
    15000, 'the banner says no worker runs');
  assert.match(await textOf(browser, card('tiktok')), /Not connected/);
});

test('a token connected in the window is sealed; two workers deliver over HTTPS and the log follows live', async () => {
  await browser.$(`${card('tiktok')} [data-testid="connect"]`).click();
  await browser.$('#tiktok-pixel').waitForExist();
  await browser.$('#tiktok-pixel').setValue('CTEAM00000000000001');
  const sandboxBox = await browser.$(`${card('tiktok')} label.check input`);
  if (!(await sandboxBox.isSelected())) await sandboxBox.click();
  await browser.$(`${card('tiktok')} [data-testid="use-demo-token"]`).click();
  await until(browser, async () => (await browser.$('#tiktok-token').getValue()) !== '', 5000, 'the demo token');
  await browser.$(`${card('tiktok')} button[type="submit"]`).click();
  await until(browser, async () => /Connected/.test(await textOf(browser, card('tiktok'))), 20000, 'TikTok connected');

  const [first, second] = [await startWorker('w1'), await startWorker('w2')];
  await until(browser, async () => (await post(first, 'team-1').catch(() => ({ status: 0 }))).status === 200, 30000,
    'the first worker answers over HTTPS');
  await openPage('log', 'Delivery log');
  const shown = () =>
    browser.execute(() => [...document.querySelectorAll('[data-testid="log-table"] code.id')].map((c) => c.textContent));
  // The page has loaded (the first event, delivered by now or live); the next one can only
  // arrive live: the page reads the log once.
  await until(browser, async () => (await shown()).includes('team-1'), 20000, 'the first event');
  const posted = performance.now();
  assert.equal((await post(second, 'team-2')).status, 200);
  await until(browser, async () => (await shown()).includes('team-2'), 20000, 'the delivery in the live log');
  console.log(`a worker's delivery in the window's log: ${Math.round(performance.now() - posted)} ms after the POST`);
  await screenshot(browser, 'team-log');
});

test('the card names the worker that delivers TikTok, and the other one once it is killed', async () => {
  await openPage('integrations', 'Integrations');
  const holder = async () => {
    const text = await textOf(browser, `${card('tiktok')} [data-testid="worker"]`);
    return workers.find((w) => text.includes(`pid ${w.pid})`));
  };
  await until(browser, async () => !!(await holder()), 20000, 'the delivering worker on the card');
  await screenshot(browser, 'team-integrations');
  const killed = await holder();
  const other = workers.find((w) => w !== killed);
  killed.child.kill('SIGKILL');
  const at = performance.now();
  await until(browser, async () => (await holder()) === other, 40000, 'the other worker on the card');
  console.log(`worker killed → the card names the other worker: ${Math.round(performance.now() - at)} ms`);
  const before = await tiktokAccepted();
  assert.equal((await post(other, 'team-3')).status, 200);
  await until(browser, async () => (await tiktokAccepted()) > before, 20000, 'delivered by the worker left');
});

test('a token rotated in the window reaches the running worker without a restart', async () => {
  await fetch(`${SANDBOX}/__sandbox/faults`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ revoked_tokens: ['sandbox-tiktok-token'] }) });
  await browser.$(`${card('tiktok')} [data-testid="connect"]`).click();
  await browser.$('#tiktok-token').waitForExist();
  await browser.$(`${card('tiktok')} [data-testid="use-demo-token"]`).click();
  await until(browser, async () => (await browser.$('#tiktok-token').getValue()) === 'sandbox-tiktok-token-2', 5000,
    'a regenerated demo token');
  await browser.$(`${card('tiktok')} button[type="submit"]`).click();
  await until(browser, async () => !!(await browser.$(`${card('tiktok')} [data-testid="notice"]`).isExisting()), 20000,
    'the rotation saved');
  const alive = workers.find((w) => w.child.exitCode === null && w.child.signalCode === null);
  const before = await tiktokAccepted();
  assert.equal((await post(alive, 'team-4')).status, 200);
  // The revoked token would be refused (401) and pause the config: an accepted event used the new one.
  await until(browser, async () => (await tiktokAccepted()) > before, 20000, 'delivered with the rotated token');
  assert.doesNotMatch(await textOf(browser, card('tiktok')), /paused/i);
});
