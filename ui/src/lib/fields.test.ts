import { describe, expect, it } from 'vitest';
import { formField, workingDemoToken } from './fields';

describe('formField', () => {
  const inputs = ['pixel', 'trigger_events', 'token', 'test_code'] as const;

  it('maps each network field name to the form input that fixes it', () => {
    expect(formField('access_token', inputs)).toBe('token');
    expect(formField('conversion_access_token', inputs)).toBe('token');
    expect(formField('test_id', inputs)).toBe('test_code');
    expect(formField('pixel', inputs)).toBe('pixel');
    expect(formField('trigger_events', inputs)).toBe('trigger_events');
  });

  it('falls back to the general message for fields the form does not have', () => {
    expect(formField('config', inputs)).toBe('general');
    expect(formField('connection', ['pixel'])).toBe('general');
    expect(formField(undefined, inputs)).toBe('general');
  });
});

describe('workingDemoToken', () => {
  it('offers the demo token until it is revoked, then the first regenerated one still working', () => {
    expect(workingDemoToken('sandbox-tiktok-token', [])).toBe('sandbox-tiktok-token');
    expect(workingDemoToken('sandbox-tiktok-token', ['sandbox-tiktok-token'])).toBe('sandbox-tiktok-token-2');
    expect(workingDemoToken('sandbox-tiktok-token', ['sandbox-tiktok-token', 'sandbox-tiktok-token-2'])).toBe(
      'sandbox-tiktok-token-3',
    );
    expect(workingDemoToken('sandbox-reddit-token', ['sandbox-tiktok-token'])).toBe('sandbox-reddit-token');
  });
});
