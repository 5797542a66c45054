import { describe, expect, it } from 'vitest';
import type { PublicTicket, TicketStatus } from '../src/queue.js';
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
  const at = (id: string, dept: string, status: TicketStatus, room: string | null): PublicTicket => ({
    id,
    number: id,
    dept,
    priority: 'normal',
    status,
    room,
    order: 0,
    recalls: 0,
    issuedAt: 0,
    calledAt: null,
    startedAt: null,
    endedAt: null,
  });

  it('is the rooms of the department with a patient called there or in consultation, once each', () => {
    const tickets = [
      at('a', 'gp', 'in_consultation', 'r2'),
      at('b', 'gp', 'called', 'r1'),
      at('c', 'gp', 'called', 'r1'),
      at('d', 'gp', 'waiting', null),
      at('e', 'peds', 'called', 'r3'),
      at('f', 'gp', 'done', 'r4'),
    ];
    expect(openRoomsOf('gp', tickets)).toEqual(['r1', 'r2']);
    expect(openRoomsOf('peds', tickets)).toEqual(['r3']);
    expect(openRoomsOf('online', tickets)).toEqual([]);
  });
});
