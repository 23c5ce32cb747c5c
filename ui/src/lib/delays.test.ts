import { describe, expect, it } from 'vitest';
import { delayWords, within } from './delays';

describe('delays in words', () => {
  it('names each bound in its largest whole unit', () => {
    expect(delayWords(30)).toBe('30 s');
    expect(delayWords(300)).toBe('5 min');
    expect(delayWords(10_800)).toBe('3 h');
    expect(delayWords(172_800)).toBe('2 d');
  });

  it('says when nothing was accepted and when a delay is past the last bound', () => {
    expect(within(60, 3)).toBe('≤ 1 min');
    expect(within(null, 3)).toBe('over 7 d');
    expect(within(60, 0)).toBe('—');
  });
});
