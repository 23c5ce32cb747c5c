import type { MatchKey } from './bindings/MatchKey';

/** Short names of the match keys, as cards and the tester show them. */
export const keyName: Record<MatchKey, string> = {
  click_id: 'click id',
  email: 'email',
  phone: 'phone',
  external_id: 'external id',
  ip_and_user_agent: 'IP + UA',
};

/** Every key, in the order they are shown. */
export const allKeys = Object.keys(keyName) as MatchKey[];
