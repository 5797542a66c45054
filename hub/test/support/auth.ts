import { Redis } from 'ioredis';
import { testTokens } from '@clinic-hub/test-kit/hub-node';
import { startAuth } from '../../src/auth/start-auth.js';
import type { ClinicRegistry } from '../../src/clinics/clinic-registry.js';
import { createHubLogger } from '../../src/hub-logger.js';
import { HubMetrics } from '../../src/metrics.js';
import { QueueService } from '../../src/queue/index.js';
import { DrainState } from '../../src/socket/drain.js';
import type { NodeGuards } from '../../src/socket/event-guard.js';
import { EventRateLimiter } from '../../src/socket/rate-limiter.js';

/**
 * A hub node's authentication and socket guards, in the test's own process,
 * on a real Redis: for tests that mount one namespace or one set of routes
 * without a whole hub (the in-app notice test, the recording routes).
 */
export async function startTestAuth(redisUrl: string, clinics: ClinicRegistry) {
  const redis = new Redis(redisUrl);
  const subscriber = new Redis(redisUrl);
  const logger = createHubLogger('silent', 'test-auth');
  const metrics = new HubMetrics('test-auth');
  const queue = new QueueService(redis, clinics);
  const auth = await startAuth({
    redis,
    subscriber,
    tokens: testTokens,
    clinics,
    patientAccessUntil: (clinic, ticketId) => queue.patientAccessUntil(clinic, ticketId),
    ttlSeconds: () => 3600,
    maxSessionSeconds: () => 86_400,
    metrics,
    logger,
  });
  const guards: NodeGuards = {
    limiter: new EventRateLimiter({ socket: { perSecond: 0, burst: 1 }, user: { perSecond: 0, burst: 1 } }),
    drain: new DrainState(),
    actionTimeoutMs: 5000,
    sessions: auth.sessions,
  };
  return {
    ...auth,
    queue,
    guards,
    logger,
    metrics,
    close() {
      auth.revocations.stop();
      redis.disconnect();
      subscriber.disconnect();
    },
  };
}
