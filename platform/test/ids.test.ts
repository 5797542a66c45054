import { describe, expect, it } from 'vitest';
import { newOpaqueId } from '../src/ids.js';

describe('newOpaqueId', () => {
  it('is base64url of the given length and never begins with "-" (1 in 64 raw ids would)', () => {
    const ids = Array.from({ length: 20_000 }, () => newOpaqueId(9));
    expect(ids.every((id) => /^[A-Za-z0-9_][A-Za-z0-9_-]{11}$/.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    // The redraw does not starve other characters: "_" and "-" still appear after the first.
    expect(ids.some((id) => id.slice(1).includes('-'))).toBe(true);
  });
});
