import { afterEach, describe, expect, it } from 'vitest';
import { clearMocks, mockIPC } from '@tauri-apps/api/mocks';
import { backend, BackendError, decodeError } from './backend';

// mockIPC patches window.__TAURI_INTERNALS__; give node a window to patch.
(globalThis as unknown as { window: unknown }).window ??= globalThis;

afterEach(() => clearMocks());

describe('backend', () => {
  it('passes arguments in camelCase and returns the command result', async () => {
    mockIPC((cmd, args) => {
      if (cmd === 'list_integrations') return [{ game_id: (args as { gameId: number }).gameId }];
      throw new Error(`unexpected ${cmd}`);
    });
    const rows = await backend.listIntegrations(7);
    expect(rows[0].game_id).toBe(7);
  });

  it('turns a {code, message} rejection into a BackendError', async () => {
    mockIPC(() => {
      throw { code: 'config_exists', message: 'this game already has a X Ads config' };
    });
    const error = await backend.listGames().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BackendError);
    expect((error as BackendError).code).toBe('config_exists');
    expect((error as BackendError).message).toContain('X Ads');
  });

  it('passes the discard confirmation of a disconnect', async () => {
    const seen: unknown[] = [];
    mockIPC((cmd, args) => {
      if (cmd === 'disconnect_integration') seen.push(args);
      return null;
    });
    await backend.disconnectIntegration(3, true);
    expect(seen).toEqual([{ configId: 3, discardQueued: true }]);
  });

  it('delivers engine-state events to the listener until it unsubscribes', async () => {
    mockIPC(() => null, { shouldMockEvents: true });
    const { emit } = await import('@tauri-apps/api/event');
    const states: string[] = [];
    const stop = await backend.onEngineState((s) => states.push(s.state));
    await emit('engine-state', { state: 'retrying', reason: 'database is locked', since_ms: 1, retry_in_ms: 250, failures: 1 });
    await emit('engine-state', { state: 'running' });
    stop();
    await emit('engine-state', { state: 'stopped' });
    expect(states).toEqual(['retrying', 'running']);
  });

  it('decodes strings and unknown values without losing them', () => {
    expect(decodeError('boom').message).toBe('boom');
    expect(decodeError(42).code).toBe('internal');
  });
});
