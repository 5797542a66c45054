import { RoomTokenIssuer } from '@clinic-hub/platform/token-issuer';
import { TEST_MEDIA_SECRET } from '@clinic-hub/test-kit/consult-client';
import { ConsultService, type ConsultServiceOptions } from '../../src/consult/consult-service.js';
import { createHubLogger } from '../../src/hub-logger.js';

/**
 * The hub's consultation domain in the test's own process, on the test's
 * Redis, clinics and queue: room tokens on (the test-kit's media secret), no
 * AI session jobs, silent logs. A test gives what it needs of its own (a
 * replica wait, a lifecycle listener, room tokens off).
 */
export function testConsultService(options: Pick<ConsultServiceOptions, 'redis' | 'clinics' | 'queue'> & Partial<ConsultServiceOptions>): ConsultService {
  return new ConsultService({
    roomTokens: new RoomTokenIssuer(TEST_MEDIA_SECRET),
    roomTokenTtlSeconds: 60,
    inviteTtlSeconds: 600,
    publicUrl: () => 'https://hub.test',
    aiJobs: null,
    logger: createHubLogger('silent', 'consult-test'),
    ...options,
  });
}
