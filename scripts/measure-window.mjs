// Measures what the real window costs the computer, the way issue 23 states its targets:
// CPU ticks of the web view's process (WebKitWebProcess) over 10 s on each page with the demo
// at 10 events/s, the CPU of each page visit, the app process's idle RSS, and the time from
// the app process's start to its first page painted with data.
//
//   xvfb-run -a bash scripts/with-keyring.sh node scripts/measure-window.mjs [--json]
//
// (scripts/measure-window.sh builds and wraps it.) POSTBACK_APP picks the binary
// (target/debug/postback-desk by default; target/release/postback-desk for release figures).
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { application, freshDataDir, launch, until } from '../tests/e2e/app.mjs';

const TICKS_PER_SECOND = 100; // USER_HZ on Linux
const PAGES = [
  ['integrations', 'Integrations'],
  ['goals', 'Goals'],
  ['log', 'Delivery log'],
  ['sources', 'Sources'],
  ['sandbox', 'Sandbox'],
];
const WINDOW_SECONDS = 10;
const VISIT_SECONDS = 3;

const procStat = (pid) => {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces.
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
};
const cpuTicks = (pid) => {
  const f = procStat(pid);
  return Number(f[11]) + Number(f[12]); // utime + stime
};
const parentOf = (pid) => Number(procStat(pid)[1]);
const commandOf = (pid) => readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
/** Resident memory (or one part of it: RssAnon, RssFile) of a process, in MB. */
const rssMegabytes = (pid, field = 'VmRSS') => {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${field}:`));
  return Number(line.split(/\s+/)[1]) / 1024;
};
const processes = () => readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number);

/** The app process (started by WebKitWebDriver) and its web view's process. */
function findProcesses() {
  const app = processes().find((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] === application;
    } catch {
      return false;
    }
  });
  if (!app) throw new Error(`no running ${application}`);
  const web = processes().find((pid) => {
    try {
      return commandOf(pid).startsWith('WebKitWebProces') && parentOf(pid) === app;
    } catch {
      return false;
    }
  });
  if (!web) throw new Error('no WebKitWebProcess under the app');
  return { app, web };
}

/** Seconds since the epoch at which a process started. */
function startedAt(pid) {
  const boot = Number(readFileSync('/proc/stat', 'utf8').match(/^btime (\d+)$/m)[1]);
  return boot + Number(procStat(pid)[19]) / TICKS_PER_SECOND;
}

async function share(pid, seconds) {
  const before = cpuTicks(pid);
  await sleep(seconds * 1000);
  return (cpuTicks(pid) - before) / TICKS_PER_SECOND / seconds;
}

async function open(browser, page, title) {
  await browser.$(`nav a[data-page="${page}"]`).click();
  await until(browser, async () => (await browser.$('h1').getText()) === title, 10000, `the ${title} page`);
}

/** CPU seconds of the web process for one visit: the click, the load and what follows it. */
async function visit(browser, web, page, title) {
  const before = cpuTicks(web);
  await open(browser, page, title);
  await sleep(VISIT_SECONDS * 1000);
  return (cpuTicks(web) - before) / TICKS_PER_SECOND;
}

async function main() {
  const dataDir = freshDataDir('measure');
  const app = await launch({ POSTBACK_DATA_DIR: dataDir });
  const { browser } = app;
  const figures = { binary: application, pages: {}, visits: {} };
  try {
    await until(browser, async () => (await browser.$$('[data-testid="integrations"] > li')).length === 3, 30000, 'the cards');
    const { app: appPid, web } = findProcesses();
    // When the first page had its data on screen, on the page's own clock (see main.ts).
    const [navigated, painted] = await browser.execute(() => {
      const mark = performance.getEntriesByName('first-page')[0];
      return [performance.timeOrigin, mark ? performance.timeOrigin + mark.startTime : null];
    });
    const started = startedAt(appPid) * 1000;
    // Split at the page's navigation: before it, the app's start-up and WebKit's processes.
    figures.navigation_ms = Math.round(navigated - started);
    figures.first_page_ms = painted === null ? null : Math.round(painted - started);
    await sleep(5000);
    figures.app_idle_rss_mb = Math.round(rssMegabytes(appPid));
    figures.app_idle_anon_mb = Math.round(rssMegabytes(appPid, 'RssAnon'));
    figures.web_idle_rss_mb = Math.round(rssMegabytes(web));
    figures.idle_cpu = await share(web, WINDOW_SECONDS);

    // Page visits with no demo: the cost of opening each page.
    for (const [page, title] of [...PAGES.slice(1), PAGES[0]]) figures.visits[title] = await visit(browser, web, page, title);

    await browser.$('[data-testid="demo-banner-toggle"]').click();
    await until(browser, async () => (await browser.$('[data-testid="demo-banner"]').getText()).includes('accepted so far'), 20000, 'the demo');
    for (const [page, title] of PAGES) {
      await open(browser, page, title);
      await sleep(2000); // the visit itself is counted above
      figures.pages[title] = { web: await share(web, WINDOW_SECONDS) };
      figures.pages[title].app = await share(appPid, 2);
    }
    await open(browser, 'integrations', 'Integrations');
    await browser.$('[data-testid="demo-banner-toggle"]').click();
  } finally {
    await app.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
  return figures;
}

const figures = await main();
if (process.argv.includes('--json')) {
  console.log(JSON.stringify(figures, null, 2));
} else {
  const pct = (x) => `${(x * 100).toFixed(1)} %`;
  console.log(`binary: ${figures.binary}`);
  console.log(`first page painted: ${figures.first_page_ms} ms after the process started (page navigation began at ${figures.navigation_ms} ms)`);
  console.log(`idle: app RSS ${figures.app_idle_rss_mb} MB (${figures.app_idle_anon_mb} MB anonymous), web view RSS ${figures.web_idle_rss_mb} MB, web view CPU ${pct(figures.idle_cpu)}`);
  console.log('page            | web view CPU, demo 10/s | app CPU | one visit (CPU s, no demo)');
  for (const [, title] of PAGES) {
    const p = figures.pages[title];
    console.log(`${title.padEnd(16)}| ${pct(p.web).padStart(23)} | ${pct(p.app).padStart(7)} | ${figures.visits[title].toFixed(2)}`);
  }
}
