// The Tester's event form as plain data, and its two-way translation with the canonical JSON the
// engine reads. The JSON text is what gets checked and sent; the form only writes it. Fields the
// form does not know (page_url, hashes, …) are kept as they were pasted.

export type Consent = 'full' | 'anonymous' | 'none';

export interface DraftItem {
  id: string;
  name: string;
  price: string;
  quantity: string;
}

export interface EventDraft {
  event_id: string;
  name: string;
  player_id: string;
  consent: Consent;
  /** `datetime-local` text in the user's time zone (minutes). */
  occurred_at: string;
  ttclid: string;
  rdt_cid: string;
  twclid: string;
  email: string;
  phone: string;
  ip: string;
  user_agent: string;
  value: string;
  currency: string;
  items: DraftItem[];
  /** Pasted fields the form has no input for, kept verbatim. */
  extra: Record<string, unknown>;
}

const known = new Set([
  'event_id', 'name', 'player_id', 'consent', 'occurred_at', 'click_ids', 'email', 'phone', 'ip',
  'user_agent', 'value', 'currency', 'items',
]);

const pad = (n: number) => String(n).padStart(2, '0');

/** `datetime-local` text for an instant, in the local time zone. */
export function localInput(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** A purchase at full consent with every click id: each network has something to match. */
export function sampleDraft(nowMs: number, name = 'purchase'): EventDraft {
  return {
    event_id: `test-${nowMs.toString(36)}`,
    name,
    player_id: 'qa-player-1',
    consent: 'full',
    occurred_at: localInput(nowMs),
    ttclid: 'E.C.P.qa-click-tiktok',
    rdt_cid: 'qa-click-reddit',
    twclid: 'qa-click-x',
    email: 'qa.player@example.com',
    phone: '+14155550123',
    ip: '',
    user_agent: '',
    value: '4.99',
    currency: 'USD',
    items: [{ id: 'gem_pack_s', name: 'Small gem pack', price: '4.99', quantity: '1' }],
    extra: {},
  };
}

const put = (doc: Record<string, unknown>, key: string, value: string) => {
  if (value.trim() !== '') doc[key] = value.trim();
};

/** A number when the text is one, else the text itself (the engine names the field to fix). */
const numeric = (text: string): number | string => {
  const t = text.trim();
  return t !== '' && Number.isFinite(Number(t)) ? Number(t) : t;
};

/** The canonical event the form says, as pretty JSON. */
export function toJson(draft: EventDraft): string {
  const doc: Record<string, unknown> = {};
  put(doc, 'event_id', draft.event_id);
  put(doc, 'name', draft.name);
  if (draft.occurred_at) {
    const at = new Date(draft.occurred_at);
    doc.occurred_at = Number.isNaN(at.getTime()) ? draft.occurred_at : at.toISOString();
  }
  put(doc, 'player_id', draft.player_id);
  doc.consent = draft.consent;
  const clicks: Record<string, string> = {};
  put(clicks, 'ttclid', draft.ttclid);
  put(clicks, 'rdt_cid', draft.rdt_cid);
  put(clicks, 'twclid', draft.twclid);
  if (Object.keys(clicks).length) doc.click_ids = clicks;
  put(doc, 'email', draft.email);
  put(doc, 'phone', draft.phone);
  put(doc, 'ip', draft.ip);
  put(doc, 'user_agent', draft.user_agent);
  if (draft.value.trim() !== '') doc.value = numeric(draft.value);
  put(doc, 'currency', draft.currency);
  const items = draft.items
    .filter((i) => i.id.trim() !== '' || i.name.trim() !== '' || i.price.trim() !== '')
    .map((i) => {
      const item: Record<string, unknown> = { id: i.id.trim() };
      put(item, 'name', i.name);
      if (i.price.trim() !== '') item.price = numeric(i.price);
      item.quantity = numeric(i.quantity || '1');
      return item;
    });
  if (items.length) doc.items = items;
  return JSON.stringify({ ...doc, ...draft.extra }, null, 2);
}

const text = (v: unknown): string => (v === undefined || v === null ? '' : typeof v === 'string' ? v : String(v));

/**
 * The form for pasted JSON, or `null` when the text is not a JSON object (the JSON tab then
 * stays, with the engine's line and field). Values of the wrong type are shown as text, so the
 * engine's error still names them.
 */
export function fromJson(json: string): EventDraft | null {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch {
    return null;
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return null;
  const o = doc as Record<string, unknown>;
  const clicks = (typeof o.click_ids === 'object' && o.click_ids !== null ? o.click_ids : {}) as Record<string, unknown>;
  const occurred = new Date(text(o.occurred_at));
  const consent = text(o.consent);
  const items = Array.isArray(o.items) ? o.items : [];
  return {
    event_id: text(o.event_id),
    name: text(o.name),
    player_id: text(o.player_id),
    consent: consent === 'anonymous' || consent === 'none' ? consent : 'full',
    occurred_at: Number.isNaN(occurred.getTime()) ? text(o.occurred_at) : localInput(occurred.getTime()),
    ttclid: text(clicks.ttclid),
    rdt_cid: text(clicks.rdt_cid),
    twclid: text(clicks.twclid),
    email: text(o.email),
    phone: text(o.phone),
    ip: text(o.ip),
    user_agent: text(o.user_agent),
    value: text(o.value),
    currency: text(o.currency),
    items: items.map((raw) => {
      const i = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
      return { id: text(i.id), name: text(i.name), price: text(i.price), quantity: text(i.quantity) };
    }),
    extra: Object.fromEntries(Object.entries(o).filter(([k]) => !known.has(k))),
  };
}
