// The only module that talks to Rust: every command and its types, and error decoding.
import { invoke } from '@tauri-apps/api/core';
import type { ApiError } from './bindings/ApiError';
import type { AppInfo } from './bindings/AppInfo';
import type { ConfigSummary } from './bindings/ConfigSummary';
import type { Game } from './bindings/Game';
import type { IdKind } from './bindings/IdKind';

/** An error from the backend, with the stable code the UI can branch on. */
export class BackendError extends Error {
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = 'BackendError';
    this.code = code;
  }
}

function isApiError(value: unknown): value is ApiError {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as ApiError).code === 'string' &&
    typeof (value as ApiError).message === 'string'
  );
}

/** Turns whatever a rejected `invoke` carries into a BackendError. */
export function decodeError(raw: unknown): BackendError {
  if (raw instanceof BackendError) return raw;
  if (isApiError(raw)) return new BackendError(raw.code, raw.message);
  if (raw instanceof Error) return new BackendError('internal', raw.message);
  return new BackendError('internal', typeof raw === 'string' ? raw : 'Unexpected error from the app backend');
}

async function call<T>(command: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (raw) {
    throw decodeError(raw);
  }
}

export const backend = {
  appInfo: () => call<AppInfo>('app_info'),
  listGames: () => call<Game[]>('list_games'),
  listIntegrations: (gameId: number) => call<ConfigSummary[]>('list_integrations', { gameId }),
  /** The cleaned id, or a BackendError('invalid_input') that says what a good one looks like. */
  checkIdFormat: (kind: IdKind, value: string) => call<string>('check_id_format', { kind, value }),
};
