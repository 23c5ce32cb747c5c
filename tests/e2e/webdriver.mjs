// A minimal W3C WebDriver client over fetch, enough to drive the app through tauri-driver.
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

export const DRIVER_PORT = Number(process.env.TAURI_DRIVER_PORT ?? 4444);
const base = `http://127.0.0.1:${DRIVER_PORT}`;
const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';

async function command(method, path, body) {
  const response = await fetch(base + path, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const doc = await response.json();
  if (!response.ok) {
    throw new Error(`WebDriver ${method} ${path}: ${response.status} ${JSON.stringify(doc.value ?? doc)}`);
  }
  return doc.value;
}

/** Starts tauri-driver on loopback and waits until it answers. */
export async function startDriver(env) {
  const driver = spawn(process.env.TAURI_DRIVER ?? 'tauri-driver', ['--port', String(DRIVER_PORT), '--native-port', String(DRIVER_PORT + 1)], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const exited = new Promise((_, reject) => driver.once('exit', (code) => reject(new Error(`tauri-driver exited with ${code}`))));
  exited.catch(() => {});
  for (let i = 0; i < 100; i++) {
    if (driver.exitCode !== null) await exited;
    try {
      await fetch(`${base}/status`);
      return driver;
    } catch {
      await sleep(100);
    }
  }
  driver.kill();
  throw new Error('tauri-driver did not start within 10 s');
}

export class Session {
  constructor(id) {
    this.id = id;
  }

  static async start(application) {
    const value = await command('POST', '/session', {
      capabilities: { alwaysMatch: { browserName: 'wry', 'tauri:options': { application } } },
    });
    return new Session(value.sessionId);
  }

  async find(css) {
    const value = await command('POST', `/session/${this.id}/element`, { using: 'css selector', value: css });
    return value[ELEMENT];
  }

  async findAll(css) {
    const value = await command('POST', `/session/${this.id}/elements`, { using: 'css selector', value: css });
    return value.map((e) => e[ELEMENT]);
  }

  async text(element) {
    return command('GET', `/session/${this.id}/element/${element}/text`);
  }

  async attribute(element, name) {
    return command('GET', `/session/${this.id}/element/${element}/attribute/${name}`);
  }

  async click(element) {
    await command('POST', `/session/${this.id}/element/${element}/click`, {});
  }

  /** Replaces the input's value with `text`, as typed keys. */
  async type(element, text) {
    await command('POST', `/session/${this.id}/element/${element}/clear`, {});
    await command('POST', `/session/${this.id}/element/${element}/value`, { text });
  }

  async execute(script, args = []) {
    return command('POST', `/session/${this.id}/execute/sync`, { script, args });
  }

  async screenshot() {
    return Buffer.from(await command('GET', `/session/${this.id}/screenshot`), 'base64');
  }

  /** Polls `check` until it returns a truthy value or `ms` pass. */
  async waitFor(check, ms = 20000) {
    const deadline = Date.now() + ms;
    let last;
    while (Date.now() < deadline) {
      try {
        const value = await check();
        if (value) return value;
      } catch (e) {
        last = e;
      }
      await sleep(100);
    }
    throw new Error(`timed out after ${ms} ms${last ? `: ${last.message}` : ''}`);
  }

  async close() {
    // Closing occasionally drops the connection with WebKitWebDriver: not a test failure.
    await command('DELETE', `/session/${this.id}`).catch(() => {});
  }
}
