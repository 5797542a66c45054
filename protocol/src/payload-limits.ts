/**
 * How big and how deep a client's payload may be, and how to measure one
 * without recursion: a payload nested thousands of levels deep (10 KB of
 * `[[[[…`) overflows the call stack of anything that walks it recursively
 * (`JSON.stringify`, a recursive walk), and an exception there stops a
 * server. `measurePayload` walks with an explicit stack and stops as soon as
 * a limit is passed, so its cost is bounded by the limits, not the input.
 */

/**
 * The deepest nesting any event of any namespace needs is 4 (the ack's
 * arguments array, the payload object, and two levels inside it:
 * `queue:checkin`'s `notify.quietHours`); payload-limits.test.ts checks every
 * schema against it. Anything deeper is refused with PAYLOAD_TOO_DEEP.
 */
export const PAYLOAD_MAX_DEPTH = 8;

export interface PayloadMeasure {
  /** Bytes as JSON (UTF-8), binary attachments at their length; stops counting past the limit. */
  bytes: number;
  /** Deepest nesting of arrays and objects (a bare value is 0, `{}` is 1); stops past the limit. */
  depth: number;
  /** Which limit was passed first, if any. */
  over: 'bytes' | 'depth' | null;
}

const isBinary = (value: unknown): value is ArrayBufferView | ArrayBuffer => ArrayBuffer.isView(value) || value instanceof ArrayBuffer;

/** Bytes of a scalar as JSON: JSON.stringify of a string or number never recurses. */
function scalarBytes(value: unknown): number {
  switch (typeof value) {
    case 'string':
      return utf8Length(JSON.stringify(value));
    case 'number':
      return Number.isFinite(value) ? String(value).length : 4;
    case 'boolean':
      return value ? 4 : 5;
    case 'bigint':
      return String(value).length;
    default:
      // null, and undefined or functions in arrays (JSON writes null)
      return 4;
  }
}

function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/**
 * Size and depth of `value` as a client sent it (functions — ack callbacks —
 * are left out at the top level, as they are not data). Iterative: any
 * shape is measured in bounded time and stack.
 */
export function measurePayload(value: unknown, limits: { maxBytes: number; maxDepth: number }): PayloadMeasure {
  let bytes = 0;
  let depth = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [item, level] = stack.pop()!;
    if (isBinary(item)) {
      bytes += item.byteLength;
    } else if (typeof item === 'object' && item !== null) {
      const inner = level + 1;
      if (inner > depth) depth = inner;
      if (depth > limits.maxDepth) return { bytes, depth, over: 'depth' };
      if (Array.isArray(item)) {
        bytes += 2;
        for (let i = item.length - 1; i >= 0; i--) {
          // A comma before every element but the first.
          if (i > 0) bytes += 1;
          stack.push([item[i], inner]);
          if (bytes > limits.maxBytes) return { bytes, depth, over: 'bytes' };
        }
      } else {
        let fields = 0;
        for (const key in item) {
          if (!Object.hasOwn(item, key)) continue;
          const field = (item as Record<string, unknown>)[key];
          if (field === undefined || typeof field === 'function') continue;
          fields++;
          bytes += utf8Length(JSON.stringify(key)) + 1;
          stack.push([field, inner]);
          if (bytes > limits.maxBytes) return { bytes, depth, over: 'bytes' };
        }
        bytes += 2 + Math.max(0, fields - 1);
      }
    } else if (typeof item !== 'function' || level > 0) {
      bytes += scalarBytes(item);
    }
    if (bytes > limits.maxBytes) return { bytes, depth, over: 'bytes' };
  }
  return { bytes, depth, over: null };
}
