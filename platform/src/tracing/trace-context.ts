import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { TRACEPARENT_PATTERN, type TracedJob } from '@clinic-hub/protocol';

/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/), just enough to
 * carry one trace from a client action through the hub into the workers' jobs
 * and logs, without an OpenTelemetry SDK: the ids are the ones an OTel
 * collector would join on if one is added later.
 */
export interface TraceContext {
  /** 32 lower-case hex digits, not all zero. */
  traceId: string;
  /** This unit of work's span: 16 lower-case hex digits, not all zero. */
  spanId: string;
  /** The span that caused this one, when it came from elsewhere. */
  parentSpanId?: string;
  /** 2 hex digits; 01 = sampled. */
  flags: string;
}

const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/** The `traceparent` header value, as received: null when absent or malformed (a new trace is started then). */
export function parseTraceparent(value: unknown): { traceId: string; spanId: string; flags: string } | null {
  if (typeof value !== 'string' || value.length > 256) return null;
  const match = TRACEPARENT_PATTERN.exec(value.trim());
  if (!match) return null;
  const [, version, traceId, spanId, flags, rest] = match as unknown as [string, string, string, string, string, string | undefined];
  // Version ff is forbidden; version 00 has exactly four fields; later versions may append more.
  if (version === 'ff' || (version === '00' && rest !== undefined)) return null;
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return null;
  return { traceId, spanId, flags };
}

/**
 * A message without its `traceparent`, which any client message may carry
 * (docs/protocol.md) and no schema lists: taken out before validation.
 */
export function splitTraceparent(message: unknown): { body: unknown; traceparent: unknown } {
  if (typeof message !== 'object' || message === null || Array.isArray(message) || !Object.hasOwn(message, 'traceparent')) {
    return { body: message, traceparent: undefined };
  }
  const { traceparent, ...body } = message as Record<string, unknown>;
  return { body, traceparent };
}

/** The value to send on: this context's span as the parent of the next. */
export function formatTraceparent(context: TraceContext): string {
  return `00-${context.traceId}-${context.spanId}-${context.flags}`;
}

/** A span of its own, continuing the trace of `parent` (a traceparent value), or starting a new trace. */
export function continueTrace(parent: unknown): TraceContext {
  const parsed = parseTraceparent(parent);
  if (!parsed) return { traceId: randomBytes(16).toString('hex'), spanId: newSpanId(), flags: '01' };
  return { traceId: parsed.traceId, spanId: newSpanId(), parentSpanId: parsed.spanId, flags: parsed.flags };
}

function newSpanId(): string {
  for (;;) {
    const id = randomBytes(8).toString('hex');
    if (id !== ZERO_SPAN) return id;
  }
}

/**
 * What a job caused by `context` (by default the action being handled)
 * carries, so that its worker continues the trace (protocol TracedJob).
 * Without a context the job starts a trace of its own.
 */
export function tracedJob(context: TraceContext | undefined = currentTrace()): TracedJob {
  return { traceparent: formatTraceparent(context ?? continueTrace(undefined)) };
}

/** For a line about a job logged outside its run (failed, dead-lettered): the trace it belongs to. */
export function jobTraceId(job: TracedJob): { trace_id?: string } {
  const parsed = parseTraceparent(job.traceparent);
  return parsed ? { trace_id: parsed.traceId } : {};
}

const current = new AsyncLocalStorage<TraceContext>();

/** Runs `work` with `context` as the current trace: whatever it enqueues or logs carries it. */
export function runInTrace<T>(context: TraceContext, work: () => T): T {
  return current.run(context, work);
}

/** The trace of the action or request being handled, if any. */
export function currentTrace(): TraceContext | undefined {
  return current.getStore();
}

/** The action being handled as a `traceparent`, for a Redis script to keep beside what it writes; "" outside any action. */
export function currentTraceparentArg(): string {
  const trace = current.getStore();
  return trace ? formatTraceparent(trace) : '';
}

/** Log fields in OpenTelemetry's naming for logs. */
export function traceLogFields(context: TraceContext | undefined): { trace_id?: string; span_id?: string; parent_span_id?: string } {
  if (!context) return {};
  return { trace_id: context.traceId, span_id: context.spanId, ...(context.parentSpanId ? { parent_span_id: context.parentSpanId } : {}) };
}
