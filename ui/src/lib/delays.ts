// Freshness bounds in words, as the card and the Delivery log show them.

/** A bucket bound in seconds: "30 s", "5 min", "3 h", "2 d". */
export function delayWords(secs: number): string {
  if (secs < 60) return `${secs} s`;
  if (secs < 3600) return `${secs / 60} min`;
  if (secs < 86_400) return `${secs / 3600} h`;
  return `${secs / 86_400} d`;
}

/** A p50 / p95 bound: "≤ 5 min", "over 7 d" past the last bound, "—" with nothing accepted. */
export function within(secs: number | null, delivered: number): string {
  if (delivered === 0) return '—';
  return secs === null ? 'over 7 d' : `≤ ${delayWords(secs)}`;
}
