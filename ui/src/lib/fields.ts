import type { ConfigSummary } from './bindings/ConfigSummary';
import type { SandboxDemo } from './bindings/SandboxDemo';

/** What both Connect forms get from their card. */
export interface ConnectFormProps {
  row: ConfigSummary;
  sandboxDemo: SandboxDemo | null;
  /** Whether "send to the built-in sandbox" starts ticked. */
  defaultSandbox: boolean;
  onSaved: (message: string) => void;
  onCancel: () => void;
}

// Which input of a Connect form an error's `field` points at.
const aliases: Record<string, string> = {
  access_token: 'token',
  conversion_access_token: 'token',
  token_env: 'token',
  test_event_code: 'test_code',
  test_id: 'test_code',
  pixel_code: 'pixel',
  pixel_id: 'pixel',
};

/** The form input named by a backend error field, or `general` when none matches. */
export function formField(field: string | undefined, inputs: readonly string[]): string {
  if (!field) return 'general';
  const name = aliases[field] ?? field;
  return inputs.includes(name) ? name : 'general';
}

/**
 * The sandbox demo token that works now: the demo token, or after it was revoked (Sandbox page)
 * the first "regenerated" one (`…-2`, `…-3`) not revoked too — the sandbox accepts those.
 */
export function workingDemoToken(demo: string, revoked: readonly string[]): string {
  if (!revoked.includes(demo)) return demo;
  for (let n = 2; ; n++) {
    const regenerated = `${demo}-${n}`;
    if (!revoked.includes(regenerated)) return regenerated;
  }
}
