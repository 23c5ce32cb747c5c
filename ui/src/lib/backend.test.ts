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

  it('decodes strings and unknown values without losing them', () => {
    expect(decodeError('boom').message).toBe('boom');
    expect(decodeError(42).code).toBe('internal');
  });
});
