import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { ChatPayloads } from '../src/chat-payloads.js';
import { ConsultPayloads } from '../src/consult-payloads.js';
import { ClientSignal } from '../src/media-signal.js';
import { PAYLOAD_MAX_DEPTH, measurePayload } from '../src/payload-limits.js';
import { QueuePayloads } from '../src/queue.js';

/** How deep a value accepted by `schema` can nest (objects and arrays), read from zod's definitions. */
function schemaDepth(schema: z.ZodType, seen = new Set<unknown>()): number {
  const def = (schema as unknown as { _zod: { def: Record<string, unknown> & { type: string } } })._zod.def;
  if (seen.has(def)) throw new Error('a recursive schema has no depth limit');
  seen.add(def);
  try {
    const child = (s: unknown) => schemaDepth(s as z.ZodType, seen);
    switch (def.type) {
      case 'object':
        return 1 + Math.max(0, ...Object.values(def.shape as Record<string, unknown>).map(child));
      case 'array':
        return 1 + child(def.element);
      case 'tuple':
        return 1 + Math.max(0, ...(def.items as unknown[]).map(child));
      case 'record':
        return 1 + child(def.valueType);
      case 'union':
        return Math.max(...(def.options as unknown[]).map(child));
      case 'optional':
      case 'nullable':
      case 'default':
      case 'prefault':
      case 'readonly':
      case 'catch':
      case 'nonoptional':
        return child(def.innerType);
      case 'pipe':
        return Math.max(child(def.in), child(def.out));
      case 'lazy':
      case 'any':
      case 'unknown':
        throw new Error(`a ${def.type} schema has no depth limit`);
      default:
        return 0;
    }
  } finally {
    seen.delete(def);
  }
}

const EVERY_SCHEMA: [string, z.ZodType][] = [
  ...Object.entries(QueuePayloads),
  ...Object.entries(ChatPayloads),
  ...Object.entries(ConsultPayloads),
  ['media signal', ClientSignal],
];

describe('PAYLOAD_MAX_DEPTH', () => {
  it('leaves room for every schema of every namespace, with the arguments array around it', () => {
    const depths = Object.fromEntries(EVERY_SCHEMA.map(([name, schema]) => [name, schemaDepth(schema)]));
    const deepest = Math.max(...Object.values(depths));
    // The event guard measures the event's arguments: [payload], one level more.
    expect(deepest + 1, JSON.stringify(depths)).toBeLessThanOrEqual(PAYLOAD_MAX_DEPTH);
    expect(deepest).toBeGreaterThanOrEqual(2);
  });
});

describe('measurePayload', () => {
  const limits = { maxBytes: 16_384, maxDepth: PAYLOAD_MAX_DEPTH };

  it('counts what JSON.stringify would write, for ordinary payloads', () => {
    const samples: unknown[] = [
      {},
      [],
      { dept: 'gp', room: 'r1', requestId: 'abcdefgh1234' },
      [{ text: { ja: '診察室へどうぞ', en: 'Please come in 🙂' }, durationSeconds: 20 }],
      { a: [1, 2.5, -3e-7, null, true, false, 'x"y\\z\n\u0001'], b: { c: { d: [] } } },
      { skipped: undefined, kept: 1 },
      [undefined, 1],
    ];
    for (const sample of samples) {
      expect(measurePayload(sample, limits), JSON.stringify(sample)).toMatchObject({ bytes: Buffer.byteLength(JSON.stringify(sample)), over: null });
    }
  });

  it('counts binary attachments at their length and leaves ack callbacks out', () => {
    expect(measurePayload([{ x: 1 }, Buffer.alloc(1000)], limits).bytes).toBe(Buffer.byteLength('[{"x":1},]') + 1000);
    expect(measurePayload([{ x: 1 }, () => undefined].filter((a) => typeof a !== 'function'), limits).over).toBeNull();
  });

  it('measures 5,000 and 500,000 levels of nesting without recursion, stopping at the limit', () => {
    for (const levels of [5_000, 500_000]) {
      const deep = JSON.parse('['.repeat(levels) + ']'.repeat(levels)) as unknown;
      const measured = measurePayload(deep, { maxBytes: 10_000_000, maxDepth: PAYLOAD_MAX_DEPTH });
      expect(measured).toEqual({ bytes: expect.any(Number), depth: PAYLOAD_MAX_DEPTH + 1, over: 'depth' });
      const nested = JSON.parse('{"x":'.repeat(levels) + '1' + '}'.repeat(levels)) as unknown;
      expect(measurePayload(nested, limits).over).toBe('depth');
    }
  });

  it('stops counting a wide payload once it is over the byte limit', () => {
    const wide = Array.from({ length: 1_000_000 }, () => 'x');
    const started = performance.now();
    const measured = measurePayload(wide, limits);
    expect(measured.over).toBe('bytes');
    expect(measured.bytes).toBeLessThan(limits.maxBytes + 100);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('counts keys such as __proto__ as the data they are', () => {
    const hostile = JSON.parse('{"__proto__":{"polluted":true},"constructor":{"prototype":{}}}') as unknown;
    expect(measurePayload(hostile, limits)).toMatchObject({ bytes: Buffer.byteLength(JSON.stringify(hostile)), depth: 3, over: null });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
