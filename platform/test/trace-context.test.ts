import { describe, expect, it } from 'vitest';
import { TracedJob } from '@clinic-hub/protocol';
import {
  continueTrace,
  currentTrace,
  formatTraceparent,
  jobTraceId,
  parseTraceparent,
  runInTrace,
  splitTraceparent,
  traceLogFields,
  tracedJob,
} from '../src/tracing/trace-context.js';

const PARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('W3C traceparent', () => {
  it('parses the spec’s example and refuses malformed or forbidden values', () => {
    expect(parseTraceparent(PARENT)).toEqual({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', flags: '01' });
    for (const bad of [
      undefined,
      42,
      '',
      'not-a-traceparent',
      '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01',
      '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
      'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      `${PARENT}-extra`,
    ]) {
      expect(parseTraceparent(bad), String(bad)).toBeNull();
    }
    // A later version may append fields; its first four are still read.
    expect(parseTraceparent('01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-future')).toMatchObject({ flags: '00' });
  });

  it('continues a trace with a new span whose parent is the caller’s', () => {
    const span = continueTrace(PARENT);
    expect(span.traceId).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(span.parentSpanId).toBe('00f067aa0ba902b7');
    expect(span.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(span.spanId).not.toBe('00f067aa0ba902b7');
    expect(formatTraceparent(span)).toBe(`00-4bf92f3577b34da6a3ce929d0e0e4736-${span.spanId}-01`);
  });

  it('starts a new sampled trace when there is none, or a malformed one', () => {
    const first = continueTrace(undefined);
    const second = continueTrace('garbage');
    expect(first.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(first.traceId).not.toBe(second.traceId);
    expect(first.parentSpanId).toBeUndefined();
    expect(parseTraceparent(formatTraceparent(first))).toEqual({ traceId: first.traceId, spanId: first.spanId, flags: '01' });
  });

  it('keeps the current trace across awaits, separately for concurrent work', async () => {
    const a = continueTrace(undefined);
    const b = continueTrace(undefined);
    const seen = await Promise.all(
      [a, b].map((trace) =>
        runInTrace(trace, async () => {
          await new Promise((r) => setTimeout(r, 10));
          return currentTrace()?.traceId;
        }),
      ),
    );
    expect(seen).toEqual([a.traceId, b.traceId]);
    expect(currentTrace()).toBeUndefined();
    expect(traceLogFields(a)).toEqual({ trace_id: a.traceId, span_id: a.spanId });
    expect(traceLogFields(undefined)).toEqual({});
  });
});

describe('traces handed on', () => {
  it('takes a message’s traceparent out before validation, leaving everything else', () => {
    expect(splitTraceparent({ type: 'ping', id: 'r1', traceparent: PARENT })).toEqual({ body: { type: 'ping', id: 'r1' }, traceparent: PARENT });
    expect(splitTraceparent({ type: 'ping' })).toEqual({ body: { type: 'ping' }, traceparent: undefined });
    for (const other of [null, 'text', [PARENT]]) expect(splitTraceparent(other)).toEqual({ body: other, traceparent: undefined });
  });

  it('puts the current span into a job as its parent, or a new trace’s when nothing is traced', () => {
    const action = continueTrace(PARENT);
    const job = runInTrace(action, () => tracedJob());
    expect(job).toEqual({ traceparent: formatTraceparent(action) });
    expect(TracedJob.parse(job)).toEqual(job);
    const untraced = parseTraceparent(tracedJob().traceparent);
    expect(untraced?.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(untraced?.traceId).not.toBe(action.traceId);
    expect(jobTraceId(job)).toEqual({ trace_id: action.traceId });
    expect(jobTraceId({})).toEqual({});
  });

  it('never fails a job for its trace: a malformed traceparent is dropped', () => {
    expect(TracedJob.parse({ traceparent: 'not-a-traceparent' })).toEqual({ traceparent: undefined });
    expect(TracedJob.parse({ traceparent: 42 })).toEqual({ traceparent: undefined });
    expect(TracedJob.parse({})).toEqual({});
  });
});
