import { describe, expect, it } from 'vitest';
import { fromJson, sampleDraft, toJson } from './eventDraft';

describe('event draft', () => {
  const now = Date.UTC(2026, 11, 4, 12, 30);

  it('writes canonical JSON with nested click ids, numbers and no empty fields', () => {
    const draft = { ...sampleDraft(now), twclid: '', email: '  ' };
    const doc = JSON.parse(toJson(draft));
    expect(doc.click_ids).toEqual({ ttclid: 'E.C.P.qa-click-tiktok', rdt_cid: 'qa-click-reddit' });
    expect(doc.value).toBe(4.99);
    expect(doc.items).toEqual([{ id: 'gem_pack_s', name: 'Small gem pack', price: 4.99, quantity: 1 }]);
    expect(doc).not.toHaveProperty('email');
    expect(doc).not.toHaveProperty('ip');
    expect(new Date(doc.occurred_at).getTime()).toBe(now);
  });

  it('reads pasted JSON back into the form, keeping fields it has no input for', () => {
    const pasted = '{"event_id":"e9","name":"level_up","occurred_at":"2026-12-04T12:30:00Z","player_id":"p","consent":"anonymous","click_ids":{"rdt_cid":"r"},"page_url":"https://x.test/","value":"12.50"}';
    const draft = fromJson(pasted);
    expect(draft).not.toBeNull();
    expect(draft?.consent).toBe('anonymous');
    expect(draft?.rdt_cid).toBe('r');
    expect(draft?.value).toBe('12.50');
    expect(draft?.extra).toEqual({ page_url: 'https://x.test/' });
    const again = JSON.parse(toJson(draft!));
    expect(again.page_url).toBe('https://x.test/');
    expect(again.occurred_at).toBe('2026-12-04T12:30:00.000Z');
    expect(again.value).toBe(12.5);
  });

  it('keeps a bad value as text so the engine names the field', () => {
    const draft = { ...sampleDraft(now), value: '4,99', occurred_at: 'yesterday' };
    const doc = JSON.parse(toJson(draft));
    expect(doc.value).toBe('4,99');
    expect(doc.occurred_at).toBe('yesterday');
  });

  it('refuses text that is not a JSON object', () => {
    expect(fromJson('{"event_id": ')).toBeNull();
    expect(fromJson('[1]')).toBeNull();
    expect(fromJson('null')).toBeNull();
  });
});
