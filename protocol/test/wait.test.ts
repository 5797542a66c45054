import { describe, expect, it } from 'vitest';
import { estimateWaitMinutes, openRoomsOf } from '../src/wait.js';

const tenMinutes = { avgConsultMinutes: 10, samples: 5 };

describe('estimateWaitMinutes', () => {
  it('is half a consultation for the first in line of a one-room department', () => {
    expect(estimateWaitMinutes(0, 1, tenMinutes)).toBe(5);
  });

  it('adds a whole consultation per ticket ahead', () => {
    expect([1, 2, 3].map((ahead) => estimateWaitMinutes(ahead, 1, tenMinutes))).toEqual([15, 25, 35]);
  });

  it('divides by the open rooms that work in parallel', () => {
    expect(estimateWaitMinutes(3, 2, tenMinutes)).toBe(18); // 3.5 × 10 / 2 = 17.5
    expect(estimateWaitMinutes(5, 3, tenMinutes)).toBe(18); // 5.5 × 10 / 3 = 18.33
    expect(estimateWaitMinutes(0, 4, tenMinutes)).toBe(1); // 1.25
  });

  it('follows the measured mean', () => {
    expect(estimateWaitMinutes(2, 1, { avgConsultMinutes: 4.5, samples: 20 })).toBe(11); // 11.25
    expect(estimateWaitMinutes(2, 1, { avgConsultMinutes: 0, samples: 3 })).toBe(0);
  });

  it('is whole minutes, never negative', () => {
    for (let ahead = 0; ahead < 30; ahead++) {
      for (let rooms = 1; rooms < 5; rooms++) {
        const minutes = estimateWaitMinutes(ahead, rooms, { avgConsultMinutes: 7.3, samples: 1 });
        expect(Number.isInteger(minutes)).toBe(true);
        expect(minutes).toBeGreaterThanOrEqual(0);
      }
    }
  });

  it('grows with the tickets ahead and shrinks with more rooms', () => {
    const stats = { avgConsultMinutes: 12, samples: 0 };
    for (let ahead = 0; ahead < 20; ahead++) {
      expect(estimateWaitMinutes(ahead + 1, 2, stats)).toBeGreaterThanOrEqual(estimateWaitMinutes(ahead, 2, stats));
      expect(estimateWaitMinutes(ahead, 3, stats)).toBeLessThanOrEqual(estimateWaitMinutes(ahead, 2, stats));
    }
  });

  it('is 0 for a ticket not in line', () => {
    expect(estimateWaitMinutes(-1, 2, tenMinutes)).toBe(0);
  });

  it('counts one room while none is open: somebody has to open', () => {
    expect(estimateWaitMinutes(3, 0, tenMinutes)).toBe(35);
    expect(estimateWaitMinutes(3, 0, tenMinutes)).toBe(estimateWaitMinutes(3, 1, tenMinutes));
  });
});

describe('openRoomsOf', () => {
  const clinic = {
    departments: [
      { id: 'gp', rooms: [{ id: 'r1', open: true }, { id: 'r2', open: false }, { id: 'r4' }] },
      { id: 'peds', rooms: [{ id: 'r3', open: false }] },
    ],
  };

  it('is the rooms of the department marked open in the clinic (open unless closed), in the clinic order', () => {
    expect(openRoomsOf('gp', clinic)).toEqual(['r1', 'r4']);
    expect(openRoomsOf('peds', clinic)).toEqual([]);
  });

  it('is empty for an unknown department or before the clinic is known', () => {
    expect(openRoomsOf('online', clinic)).toEqual([]);
    expect(openRoomsOf('gp', null)).toEqual([]);
  });
});
