import type { Socket } from 'socket.io';
import type { z } from 'zod';
import { fail, type Ack } from '@clinic-hub/protocol';
import type { Logger } from '@clinic-hub/platform/logging';
import type { HubMetrics } from '../metrics.js';
import { isRedisUnavailable, withinDeadline } from '@clinic-hub/platform/redis';
import { continueTrace, runInTrace, splitTraceparent, traceLogFields } from '@clinic-hub/platform/tracing';
import type { NodeGuards } from './event-guard.js';

export interface HandlerContext {
  logger: Logger;
  metrics: HubMetrics;
  /** Rate limits, the node's drain state, action deadline and sessions. */
  guards: NodeGuards;
}

/** A namespace's payload schemas by event name (protocol's `QueuePayloads`, `ChatPayloads`, `ConsultPayloads`). */
type NamespacePayloads = { 'auth:refresh': z.ZodType } & Record<string, z.ZodType>;

/** The typed `on` of a namespace's socket: the event names and payload types come from its schemas. */
export type On<P extends NamespacePayloads> = <E extends keyof P & string>(event: E, run: (payload: z.output<P[E]>) => Promise<Ack>) => void;

/**
 * The one way a namespace registers its handlers on a connected socket:
 * `on(event, run)` validates the payload with the protocol's schema for that
 * event (`defineHandler`). Every namespace answers `auth:refresh` the same
 * way, so it is registered here once.
 */
export function socketHandlers<P extends NamespacePayloads>(socket: Socket, payloads: P, context: HandlerContext): On<P> {
  const on: On<P> = (event, run) => defineHandler(socket, event, payloads[event], context, run);
  on('auth:refresh', () => context.guards.sessions.refresh(socket));
  return on;
}

/**
 * Registers a thin handler: validate the payload with its schema, call the
 * domain, ack the result. Validation failures, a Redis outage and bugs each
 * become an error ack with a code; the socket and the node carry on. Each
 * action runs in a trace of its own (continuing the client's `traceparent`),
 * and counts as in flight until its ack is sent, so that a draining node
 * can wait for it.
 */
export function defineHandler<S extends z.ZodType>(
  socket: Socket,
  event: string,
  schema: S,
  context: HandlerContext,
  run: (payload: z.output<S>) => Promise<Ack>,
): void {
  // The whole event name: `chat:join` and `consult:join` are different actions.
  const action = event;
  socket.on(event, async (...args: unknown[]) => {
    const started = performance.now();
    const finished = context.guards.drain.begin();
    let ack = args[args.length - 1];
    const raw = typeof ack === 'function' ? (args.length > 1 ? args[0] : undefined) : args[0];
    if (typeof ack !== 'function') {
      ack = (reply: Ack) => {
        if (!reply.ok) socket.emit('hub:error', { ...reply.error, event });
      };
    }
    const { body: payload, traceparent } = splitTraceparent(raw);
    const trace = continueTrace(traceparent);
    let reply: Ack;
    const parsed = schema.safeParse(payload ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      reply = fail('INVALID_PAYLOAD', issue ? `${issue.path.join('.') || '(payload)'}: ${issue.message}` : undefined);
    } else {
      try {
        // A stalled Redis (or anything else the action waits for) must not leave the client without an answer.
        reply = await withinDeadline(runInTrace(trace, () => run(parsed.data)), context.guards.actionTimeoutMs, (late) =>
          context.logger.warn(
            { event, socket: socket.id, outcome: late.ok ? 'done' : 'failed', ...traceLogFields(trace) },
            'action finished after its deadline; the client was told STORE_UNAVAILABLE and retries with the same id',
          ),
        );
      } catch (error) {
        if (isRedisUnavailable(error)) {
          reply = fail('STORE_UNAVAILABLE');
        } else {
          context.logger.error({ err: error, event, socket: socket.id, ...traceLogFields(trace) }, 'handler failed');
          reply = fail('INTERNAL');
        }
      }
    }
    if (!reply.ok) context.metrics.errorsTotal.inc({ code: reply.error.code });
    context.metrics.actionDuration.observe({ action, outcome: reply.ok ? 'ok' : reply.error.code }, (performance.now() - started) / 1000);
    try {
      (ack as (r: Ack) => void)(reply);
    } finally {
      finished();
    }
  });
}
