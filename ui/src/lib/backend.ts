// The only module that talks to Rust: every command and its types, and error decoding.
import { Channel, invoke } from '@tauri-apps/api/core';
import { listen, type UnlistenFn } from '@tauri-apps/api/event';
import type { ApiError } from './bindings/ApiError';
import type { AppInfo } from './bindings/AppInfo';
import type { ConfigQuality } from './bindings/ConfigQuality';
import type { ConfigSummary } from './bindings/ConfigSummary';
import type { EngineState } from './bindings/EngineState';
import type { EventCheck } from './bindings/EventCheck';
import type { Freshness } from './bindings/Freshness';
import type { QueueDeadline } from './bindings/QueueDeadline';
import type { Game } from './bindings/Game';
import type { GameUsage } from './bindings/GameUsage';
import type { Goal } from './bindings/Goal';
import type { GoalInput } from './bindings/GoalInput';
import type { TagCheck } from './bindings/TagCheck';
import type { TestAnswer } from './bindings/TestAnswer';
import type { TagInput } from './bindings/TagInput';
import type { TagMapping } from './bindings/TagMapping';
import type { DiagnosticItem } from './bindings/DiagnosticItem';
import type { ExportFormat } from './bindings/ExportFormat';
import type { ExportProgress } from './bindings/ExportProgress';
import type { ExportTarget } from './bindings/ExportTarget';
import type { LogDetail } from './bindings/LogDetail';
import type { LogEntry } from './bindings/LogEntry';
import type { LogFilter } from './bindings/LogFilter';
import type { LogSummary } from './bindings/LogSummary';
import type { DemoStats } from './bindings/DemoStats';
import type { Faults } from './bindings/Faults';
import type { ImportProgress } from './bindings/ImportProgress';
import type { ImportReport } from './bindings/ImportReport';
import type { IngestStatus } from './bindings/IngestStatus';
import type { SandboxOverview } from './bindings/SandboxOverview';
import type { SourceTraffic } from './bindings/SourceTraffic';
import type { IdKind } from './bindings/IdKind';
import type { Saved } from './bindings/Saved';
import type { TokenIntegrationInput } from './bindings/TokenIntegrationInput';
import type { XAuthMethod } from './bindings/XAuthMethod';
import type { WorkspaceList } from './bindings/WorkspaceList';
import type { WorkspaceView } from './bindings/WorkspaceView';

/** An error from the backend, with the stable code the UI can branch on. */
export class BackendError extends Error {
  readonly code: string;
  /** The form field to fix, when the backend names one. */
  readonly field: string | undefined;

  constructor(code: string, message: string, field?: string) {
    super(message);
    this.name = 'BackendError';
    this.code = code;
    this.field = field;
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
  if (isApiError(raw)) return new BackendError(raw.code, raw.message, raw.field);
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
  /** `defaultCountry`: ISO 3166-1 alpha-2 code for phone numbers without a country code; '' for none. */
  createGame: (name: string, defaultCountry = '') => call<Game>('create_game', { name, defaultCountry }),
  renameGame: (gameId: number, name: string) => call<Game>('rename_game', { gameId, name }),
  /** The game form: name and default country ('' for none); errors name `name` or `default_country`. */
  updateGame: (gameId: number, name: string, defaultCountry: string) =>
    call<Game>('update_game', { gameId, name, defaultCountry }),
  /** The codes a game's default country can be. */
  phoneCountries: () => call<string[]>('phone_countries'),
  /** Makes the game current (the window reopens on it). */
  switchGame: (gameId: number) => call<Game>('switch_game', { gameId }),
  /** What deleting the game would remove. */
  gameUsage: (gameId: number) => call<GameUsage>('game_usage', { gameId }),
  deleteGame: (gameId: number) => call<GameUsage>('delete_game', { gameId }),
  listGoals: (gameId: number) => call<Goal[]>('list_goals', { gameId }),
  /** Creates (no key) or updates a goal; errors name the form field. */
  saveGoal: (gameId: number, input: GoalInput) => call<Goal>('save_goal', { gameId, input }),
  setGoalActive: (gameId: number, key: string, active: boolean) =>
    call<null>('set_goal_active', { gameId, key, active }),
  deleteGoal: (gameId: number, key: string) => call<null>('delete_goal', { gameId, key }),
  reorderGoals: (gameId: number, keys: string[]) => call<Goal[]>('reorder_goals', { gameId, keys }),
  tagMapping: (configId: number) => call<TagMapping>('tag_mapping', { configId }),
  /** The as-you-type check of the X mapping table; nothing is saved. */
  checkTags: (configId: number, tags: TagInput[]) => call<TagCheck[]>('check_tags', { configId, tags }),
  /** Saves unless a tag is malformed (error field `tags.<goal key>`); returns the warnings. */
  saveTags: (configId: number, tags: TagInput[]) => call<TagCheck[]>('save_tags', { configId, tags }),
  setTriggerEvents: (configId: number, events: string[]) =>
    call<string[]>('set_trigger_events', { configId, events }),
  setConfigEnabled: (configId: number, enabled: boolean) =>
    call<null>('set_config_enabled', { configId, enabled }),
  /** One keyset page of the log, newest first. */
  logPage: (filter: LogFilter) => call<LogEntry[]>('log_page', { filter }),
  /** The chart (per hour, per day over 7 days) and the totals of the filter's range. */
  logSummary: (filter: LogFilter) => call<LogSummary>('log_summary', { filter }),
  logDetail: (id: number) => call<LogDetail>('log_detail', { id }),
  logDiagnostics: (configId: number, filter: LogFilter) =>
    call<DiagnosticItem[]>('log_diagnostics', { configId, filter }),
  /** Per config: the share of queued conversions carrying each match key, a 0–10 score, the fix. */
  matchQuality: (gameId: number, sinceMs: number, untilMs: number | null = null) =>
    call<ConfigQuality[]>('match_quality', { gameId, sinceMs, untilMs }),
  /** Per config: delays from event to acceptance (p50, p95) and the conversions that went too old. */
  freshness: (gameId: number, sinceMs: number, untilMs: number | null = null) =>
    call<Freshness[]>('freshness', { gameId, sinceMs, untilMs }),
  /** Per config: when the oldest queued conversion's acceptance window closes, how many close
   *  within 24 h, and the warning. */
  queueDeadlines: (gameId: number) => call<QueueDeadline[]>('queue_deadlines', { gameId }),
  /** Re-queues the selected rows (failed / given up) under their own event ids; how many. */
  replayLogRows: (ids: number[]) => call<number>('replay_log_rows', { ids }),
  /** Re-queues every failed / given-up conversion the filter shows; how many. */
  replayFiltered: (filter: LogFilter) => call<number>('replay_filtered', { filter }),
  alertThreshold: () => call<number>('alert_threshold'),
  setAlertThreshold: (threshold: number) => call<number>('set_alert_threshold', { threshold }),
  /** The system save dialog; null when the user cancels. The path stays in Rust: the target
   *  carries a single-use handle for `exportLog` and the path only to show. */
  pickExportFile: (format: ExportFormat) => call<ExportTarget | null>('pick_export_file', { format }),
  /** Streams the filter's rows in Rust to the file chosen for `target`; progress arrives on `onProgress`. */
  exportLog: (filter: LogFilter, target: ExportTarget, onProgress: (p: ExportProgress) => void) => {
    const channel = new Channel<ExportProgress>();
    channel.onmessage = onProgress;
    return call<number>('export_log', { filter, handle: target.handle, onProgress: channel });
  },
  cancelExport: () => call<null>('cancel_export'),
  ingestStatus: () => call<IngestStatus>('ingest_status'),
  /** The ingest token, for the game server's configuration (asked for explicitly). */
  ingestToken: () => call<string>('ingest_token'),
  /** A new token; the old one stops working at once. */
  rotateIngestToken: () => call<string>('rotate_ingest_token'),
  /** Per source and network: arrived, queued, not forwarded and why. */
  attribution: (gameId: number, sinceMs: number, untilMs: number | null = null) =>
    call<SourceTraffic[]>('attribution', { gameId, sinceMs, untilMs }),
  /** The system open dialog for an NDJSON or CSV file; null when cancelled. */
  pickImportFile: () => call<string | null>('pick_import_file'),
  importFile: (gameId: number, path: string, onProgress: (p: ImportProgress) => void) => {
    const channel = new Channel<ImportProgress>();
    channel.onmessage = onProgress;
    return call<ImportReport>('import_file', { gameId, path, onProgress: channel });
  },
  cancelImport: () => call<null>('cancel_import'),
  /** Saves every bad line of the last import; the path, or null when cancelled. */
  saveImportErrors: () => call<string | null>('save_import_errors'),
  demoStart: (gameId: number, rate: number) => call<null>('demo_start', { gameId, rate }),
  demoStop: () => call<DemoStats | null>('demo_stop'),
  demoStatus: () => call<DemoStats | null>('demo_status'),
  onDemoStats: (handler: (stats: DemoStats) => void): Promise<UnlistenFn> =>
    listen<DemoStats>('demo-stats', (event) => handler(event.payload)),
  /** What the event (canonical JSON) would send to each of the game's configs; a text that is
   *  not an event comes back as `problem` (field and line), not as an error. */
  checkEvent: (gameId: number, text: string) => call<EventCheck>('check_event', { gameId, text }),
  /** One test send in the network's test mode (never queued or logged; the code is not kept). */
  sendTestEvent: (configId: number, text: string, testCode: string) =>
    call<TestAnswer>('send_test_event', { configId, text, testCode }),
  sandboxOverview: () => call<SandboxOverview>('sandbox_overview'),
  setSandboxFaults: (faults: Faults) => call<Faults>('set_sandbox_faults', { faults }),
  resetSandbox: () => call<null>('reset_sandbox'),
  /** New log rows as the dispatcher settles them (each call: one batch). */
  onLogAppended: (handler: (rows: LogEntry[]) => void): Promise<UnlistenFn> =>
    listen<LogEntry[]>('log-appended', (event) => handler(event.payload)),
  listIntegrations: (gameId: number) => call<ConfigSummary[]>('list_integrations', { gameId }),
  /** The cleaned id, or a BackendError('invalid_input') that says what a good one looks like. */
  checkIdFormat: (kind: IdKind, value: string) => call<string>('check_id_format', { kind, value }),
  /** Validates with one test event (test code never stored), then keychain + config. */
  saveTokenIntegration: (input: TokenIntegrationInput) => call<Saved>('save_token_integration', { input }),
  /** Opens the system browser; resolves with a handle once the user approved. */
  authorizeX: (gameId: number, method: XAuthMethod, sandbox: boolean) =>
    call<string>('authorize_x', { gameId, method, sandbox }),
  /** Stops a waiting authorizeX (it then rejects with code oauth_cancelled). */
  cancelXAuthorization: () => call<null>('cancel_x_authorization'),
  finishXConnection: (gameId: number, handle: string, pixelId: string) =>
    call<Saved>('finish_x_connection', { gameId, handle, pixelId }),
  /**
   * Removes the config and its keychain entry. While conversions wait, it rejects with code
   * `queued_events` (the message says how many) unless `discardQueued` confirms discarding them.
   */
  disconnectIntegration: (configId: number, discardQueued: boolean) =>
    call<null>('disconnect_integration', { configId, discardQueued }),
  /** What the delivery engine is doing (running, retrying after an error, read-only). */
  engineState: () => call<EngineState>('engine_state'),
  /** The open workspace and the team workspaces this desktop knows. */
  workspaces: () => call<WorkspaceList>('workspaces'),
  /** Opens a team workspace by its PostgreSQL URL (kept in the OS keychain) and switches to it;
   *  errors name `name` or `url`. */
  openTeamWorkspace: (name: string, url: string) => call<WorkspaceList>('open_team_workspace', { name, url }),
  /** Switches to a known team workspace, or to the local one with `null`. */
  switchWorkspace: (teamId: string | null) => call<WorkspaceList>('switch_workspace', { teamId }),
  forgetTeamWorkspace: (teamId: string) => call<WorkspaceList>('forget_team_workspace', { teamId }),
  /** After a switch (from this window or not): every page shows another workspace now. */
  onWorkspaceChanged: (handler: (view: WorkspaceView) => void): Promise<UnlistenFn> =>
    listen<WorkspaceView>('workspace-changed', (event) => handler(event.payload)),
  /** Calls `handler` on every change of the engine's state; resolves to the unsubscribe. */
  onEngineState: (handler: (state: EngineState) => void): Promise<UnlistenFn> =>
    listen<EngineState>('engine-state', (event) => handler(event.payload)),
};
