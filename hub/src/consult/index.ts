/**
 * The consult domain's surface for the hub and tests: admission to video
 * consultations, room tokens, the AI relay (docs/consultations.md, "Admission").
 */
import type { RedisClient, RedisTarget, ReplicaAck, ReplicaAckObserver, ReplicaAckPolicy } from '@clinic-hub/platform/redis';
import type { Namespace } from 'socket.io';
import { RoomTokenIssuer } from '@clinic-hub/platform/token-issuer';
import type { Authenticator } from '../auth/authenticator.js';
import type { ClinicRegistry } from '../clinics/clinic-registry.js';
import type { HttpRequest, HttpResponse } from '../http/http-types.js';
import type { Logger } from '@clinic-hub/platform/logging';
import type { HubMetrics } from '../metrics.js';
import type { QueueService } from '../queue/index.js';
import { readAiWorkers } from '@clinic-hub/platform/job-queues';
import type { NodeGuards } from '../socket/event-guard.js';
import { AiSessionJobs } from './ai-session-jobs.js';
import { registerConsultHandlers } from './consult-handlers.js';
import { startConsultRelay } from './consult-live.js';
import { createConsultRoutes } from './consult-routes.js';
import { ConsultService, type ConsultLifecycle } from './consult-service.js';

export { ConsultService, type ConsultCaller, type ConsultLifecycle } from './consult-service.js';
export { ConsultStore } from './consult-store.js';
export { consultIndexKeys, consultRooms } from './consult-keys.js';
export { listMediaNodes, pickMediaNode } from './media-nodes.js';
export { AiSessionJobs } from './ai-session-jobs.js';

export interface ConsultOptions {
  /** Told when a patient is admitted to a consultation. */
  onAdmitted?: (clinic: string, ticketId: string, consultId: string) => void;
  /** Told when a consultation starts or ends (once, by the node that made the change). */
  onLifecycle?: (clinic: string, change: ConsultLifecycle) => void;
  /** The `/consult` namespace, with `socketAuth` in front. */
  nsp: Namespace;
  redis: RedisClient;
  /** Where `redis` connects to: the AI session queue opens its own connection there. */
  redisTarget: RedisTarget;
  /** The replica wait before an admission with an AI session is acknowledged (HUB_REDIS_ACK_REPLICAS). */
  aiSessionAck?: { policy: ReplicaAckPolicy; observe?: ReplicaAckObserver };
  /** The replica wait before any admission is acknowledged, on the clinic's shard (the queue's; HUB_REDIS_ACK_REPLICAS). */
  ack?: ReplicaAck;
  /** A connection of its own for the AI, control and queue channels. */
  subscriber: RedisClient;
  config: { mediaTokenSecret: string | null; roomTokenTtlSeconds: number; inviteTtlSeconds: number };
  nodeId: string;
  clinics: ClinicRegistry;
  /** Checks the bearer tokens of the consultations route. */
  authenticator: Authenticator;
  queue: QueueService;
  publicUrl: () => string;
  logger: Logger;
  metrics: HubMetrics;
  maxPayloadBytes: number;
  /** How long a clinic's recordings are kept (days): told to participants before they consent. */
  recordingRetentionDays: (clinic: string) => number;
  guards: NodeGuards;
}

export interface RunningConsult {
  service: ConsultService;
  /** HTTP routes (the consultations list), for `createRoutes({ domainRoutes })`. */
  routes: (request: HttpRequest) => Promise<HttpResponse | null>;
  close(): Promise<void>;
}

/** Wires consultations into a hub node: service, socket handlers, the AI relay and HTTP routes. */
export async function startConsult(options: ConsultOptions): Promise<RunningConsult> {
  const { config, logger, clinics } = options;
  if (!config.mediaTokenSecret) logger.warn('MEDIA_TOKEN_SECRET is not set: video consultations are off (admission answers CONSULT_DISABLED)');
  const withAi = clinics.ids().some((id) => clinics.get(id)?.ai.enabled);
  const aiJobs = withAi ? new AiSessionJobs(options.redisTarget, `hub:${options.nodeId}:ai-jobs`, logger, options.aiSessionAck) : null;
  const service = new ConsultService({
    redis: options.redis,
    clinics,
    queue: options.queue,
    roomTokens: config.mediaTokenSecret ? new RoomTokenIssuer(config.mediaTokenSecret) : null,
    roomTokenTtlSeconds: config.roomTokenTtlSeconds,
    inviteTtlSeconds: config.inviteTtlSeconds,
    publicUrl: options.publicUrl,
    aiJobs,
    recordingRetentionDays: options.recordingRetentionDays,
    ...(options.ack && { ack: options.ack }),
    aiWorkersAlive: async () => (await readAiWorkers(options.redis)).filter((w) => !w.stopping).length,
    ...(options.onLifecycle ? { onLifecycle: options.onLifecycle } : {}),
    logger,
  });
  registerConsultHandlers(options.nsp, {
    consult: service,
    logger,
    metrics: options.metrics,
    maxPayloadBytes: options.maxPayloadBytes,
    guards: options.guards,
    ...(options.onAdmitted ? { onAdmitted: options.onAdmitted } : {}),
  });
  await startConsultRelay(options.subscriber, options.nsp, { consult: service, clinics, logger });
  return {
    service,
    routes: createConsultRoutes({ redis: options.redis, authenticator: options.authenticator, clinics, consult: service }),
    close: async () => {
      await aiJobs?.close();
    },
  };
}
