/**
 * Payloads for the fuzz test: generated from each event's JSON schema (what
 * zod's toJSONSchema says the hub accepts), then mutated the ways a hostile or
 * broken client would: deep nesting, huge arrays, wrong types, prototype keys,
 * odd unicode, numbers JSON can barely say, fields missing or extra, no
 * object at all. Everything comes from one seeded generator: the same seed
 * gives the same cases.
 */

/** mulberry32: small, fast, and the same sequence for the same seed on every machine. */
export class Random {
  private state: number;

  constructor(readonly seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }

  chance(p: number): boolean {
    return this.next() < p;
  }
}

export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  maxItems?: number;
  default?: unknown;
}

/** Real values the generator prefers for fields of these names, so that cases reach past validation into the domain. */
export type ValuePools = Record<string, readonly unknown[]>;

const ID_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-';

export function randomId(random: Random, min = 8, max = 24): string {
  let out = '';
  for (let i = random.int(min, max); i > 0; i--) out += ID_CHARS[random.int(0, ID_CHARS.length - 1)];
  return out;
}

/** A value the schema accepts, more or less: string patterns are met from the pools or with plain ids. */
export function generate(schema: JsonSchema, random: Random, pools: ValuePools, name = '', depth = 0): unknown {
  const pool = pools[name];
  if (pool && random.chance(0.8)) return random.pick(pool);
  if (schema.const !== undefined) return schema.const;
  if (schema.enum) return random.pick(schema.enum);
  const options = schema.anyOf ?? schema.oneOf;
  if (options) return generate(random.pick(options), random, pools, name, depth);
  const type = Array.isArray(schema.type) ? random.pick(schema.type) : schema.type;
  switch (type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [key, property] of Object.entries(schema.properties ?? {})) {
        if (schema.required?.includes(key) || random.chance(0.5)) out[key] = generate(property, random, pools, key, depth + 1);
      }
      return out;
    }
    case 'array': {
      const count = random.int(0, Math.min(schema.maxItems ?? 3, 3));
      return Array.from({ length: count }, () => generate(schema.items ?? {}, random, pools, name, depth + 1));
    }
    case 'string':
      return randomId(random, Math.max(1, schema.minLength ?? 8), Math.min(schema.maxLength ?? 24, 24));
    case 'integer':
    case 'number': {
      const min = Math.max(schema.minimum ?? 0, -1e6);
      const max = Math.min(schema.maximum ?? 1000, 1e6);
      return type === 'integer' ? random.int(Math.ceil(min), Math.floor(max)) : min + random.next() * (max - min);
    }
    case 'boolean':
      return random.chance(0.5);
    case 'null':
      return null;
    default:
      return depth > 2 ? null : { note: 'free' };
  }
}

const ODD_STRINGS = [
  '',
  ' ',
  '\u0000',
  '\ud800',
  '\udfff\ud800',
  '\u202e\u0627\u0644\u0639\u0631\u0628\u064a\u0629',
  'e\u0301\u0301\u0301\u0301\u0301\u0301',
  '\u200b\u200d\ufeff',
  '👩🏽‍⚕️🏥💊',
  '受付番号 Ａ－０１２',
  '../../../../etc/passwd',
  '%00%2e%2e%2f',
  '<script>alert(1)</script>',
  '${7*7}{{7*7}}',
  "'; DROP TABLE tickets; --",
  'ch:{testclinic}:seq',
  '\r\nX-Injected: 1',
  'A'.repeat(300),
  '\u{10ffff}'.repeat(50),
];

const ODD_NUMBERS = ['-0', '1e308', '-1e308', '1e999', '9007199254740993', '0.1', '-1', '4294967296', '1e-400', '123456789012345678901234567890'];

export type Mutation =
  | 'none'
  | 'deep'
  | 'huge-array'
  | 'wide-object'
  | 'long-string'
  | 'wrong-type'
  | 'proto-keys'
  | 'unicode'
  | 'odd-number'
  | 'missing-field'
  | 'extra-fields'
  | 'not-an-object';

export const MUTATIONS: readonly Mutation[] = [
  'none',
  'deep',
  'huge-array',
  'wide-object',
  'long-string',
  'wrong-type',
  'proto-keys',
  'unicode',
  'odd-number',
  'missing-field',
  'extra-fields',
  'not-an-object',
];

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** A field of the payload (own keys only), or null. */
function someKey(random: Random, value: unknown): string | null {
  if (!isRecord(value)) return null;
  const keys = Object.keys(value);
  return keys.length ? random.pick(keys) : null;
}

function otherType(random: Random, value: unknown): unknown {
  const choices: unknown[] = [null, true, 0, -1, 1.5, '', 'x', [], {}, [[]], { a: 1 }, ['a', 1, null]];
  return random.pick(choices.filter((c) => typeof c !== typeof value || Array.isArray(c) !== Array.isArray(value)));
}

/**
 * The payload as the JSON text of one event argument, mutated. Text, not a
 * value: some cases (prototype keys, numbers such as 1e999, nesting deeper
 * than any encoder would walk) only exist as text.
 */
export function mutate(random: Random, payload: unknown, mutation: Mutation): string {
  const value = structuredClone(payload);
  const key = someKey(random, value);
  switch (mutation) {
    case 'none':
      return JSON.stringify(value);
    case 'deep': {
      const levels = random.pick([9, 10, 30, 200, 2_000, 5_000, 20_000]);
      const [open, close] = random.chance(0.5) ? ['[', ']'] : ['{"a":', '}'];
      const nested = `${open.repeat(levels)}${random.chance(0.5) ? '1' : '{}'}${close.repeat(levels)}`;
      if (isRecord(value) && key) return JSON.stringify({ ...value, [key]: '\u0000PLACE' }).replace('"\\u0000PLACE"', nested);
      return nested;
    }
    case 'huge-array': {
      const length = random.pick([1_000, 3_000, 10_000, 100_000]);
      const item = random.pick(['0', '"x"', 'null', '{}', '[]']);
      const array = `[${new Array(length).fill(item).join(',')}]`;
      if (isRecord(value) && key) return JSON.stringify({ ...value, [key]: '\u0000PLACE' }).replace('"\\u0000PLACE"', array);
      return array;
    }
    case 'wide-object': {
      const count = random.pick([100, 1_000, 5_000]);
      const wide: Record<string, number> = {};
      for (let i = 0; i < count; i++) wide[`k${i}`] = i;
      return JSON.stringify(isRecord(value) ? { ...wide, ...value } : wide);
    }
    case 'long-string': {
      const text = random.pick(ODD_STRINGS).repeat(random.pick([100, 1_000, 20_000])).slice(0, 40_000);
      return JSON.stringify(isRecord(value) && key ? { ...value, [key]: text } : text);
    }
    case 'wrong-type':
      if (isRecord(value) && key) return JSON.stringify({ ...value, [key]: otherType(random, value[key]) });
      return JSON.stringify(otherType(random, value));
    case 'proto-keys': {
      const evil = random.pick([
        '"__proto__":{"role":"admin","clinic":"*","isAdmin":true}',
        '"constructor":{"prototype":{"role":"admin"}}',
        '"__proto__":null',
        '"prototype":{"polluted":1}',
        '"hasOwnProperty":1,"toString":"x","valueOf":{}',
      ]);
      const text = JSON.stringify(isRecord(value) ? value : {});
      const inner = isRecord(value) && key && isRecord(value[key]) && Object.keys(value[key]).length > 0 ? key : null;
      const nested = inner ? text.replace(`${JSON.stringify(inner)}:{`, `${JSON.stringify(inner)}:{${evil},`) : null;
      if (nested && isJson(nested)) return nested;
      return text === '{}' ? `{${evil}}` : `{${evil},${text.slice(1)}`;
    }
    case 'unicode': {
      const text = random.pick(ODD_STRINGS);
      if (isRecord(value)) {
        const out: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(value)) out[random.chance(0.2) ? `${k}${text}` : k] = typeof v === 'string' || random.chance(0.3) ? text : v;
        return JSON.stringify(out);
      }
      return JSON.stringify(text);
    }
    case 'odd-number': {
      const number = random.pick(ODD_NUMBERS);
      if (isRecord(value) && key) return JSON.stringify({ ...value, [key]: '\u0000PLACE' }).replace('"\\u0000PLACE"', number);
      return number;
    }
    case 'missing-field':
      if (isRecord(value) && key) delete value[key];
      return JSON.stringify(value);
    case 'extra-fields':
      return JSON.stringify(isRecord(value) ? { ...value, [randomId(random, 1, 12)]: otherType(random, null), clinic: '*', role: 'admin' } : value);
    case 'not-an-object':
      return random.pick(['null', '0', '""', '"queue"', '[]', '[{}]', 'true', '-1', '1e999', '{}']);
  }
}
