/**
 * The chat domain's surface for the hub, tests and benchmarks.
 * docs/protocol.md ("Chat") describes the events, membership and resume rule.
 */
import type { RedisClient } from '@clinic-hub/platform/redis';
import { resolve } from 'node:path';
import { DEFAULT_RETENTION, chatKeepSeconds, type ChatThread } from '@clinic-hub/protocol';
import type { Namespace } from 'socket.io';
import type { Authenticator } from '../auth/authenticator.js';
import type { ClinicRegistry } from '../clinics/clinic-registry.js';
import type { BodyLimit, HttpRequest, HttpResponse } from '../http/http-types.js';
import type { Logger } from '@clinic-hub/platform/logging';
import type { ReplicaAck } from '@clinic-hub/platform/redis';
import type { HubMetrics } from '../metrics.js';
import type { NodeGuards } from '../socket/event-guard.js';
import { registerChatHandlers } from './chat-handlers.js';
import { startChatFanout } from './chat-live.js';
import { ChatPresence } from './chat-presence.js';
import { chatBodyLimit, createChatRoutes } from './chat-routes.js';
import { ChatService } from './chat-service.js';
import { FileAttachmentStorage } from './attachment-storage.js';
import type { ChatQuotas } from './chat-quotas.js';

/** How often each hub node deletes the files of attachments whose retention has passed. */
const ATTACHMENT_SWEEP_MS = 10 * 60_000;

export { ChatService, type ChatServiceOptions } from './chat-service.js';
export { ChatStore, type ChatCaller, type StoredAttachment } from './chat-store.js';
export { ChatPresence } from './chat-presence.js';
export { chatKeys, chatRooms, CHAT_CHANNEL_KIND, type ChatLiveEvent } from './chat-keys.js';
export { AttachmentCipher, attachmentAdditionalData } from './attachment-cipher.js';
export { FileAttachmentStorage, attachmentStorageKey, type AttachmentStorage } from './attachment-storage.js';
export { upgradeChatLayout, chatLayoutKey, CHAT_LAYOUT } from './chat-upgrade.js';
export { NO_CHAT_QUOTAS, type ChatQuotas, type QuotaLimits } from './chat-quotas.js';
export { sniffAttachmentType, cleanFileName } from './attachment-type.js';

export interface ChatOptions {
  /** The `/chat` namespace, with `socketAuth` in front. */
  nsp: Namespace;
  /** Commands. */
  redis: RedisClient;
  /** A connection of its own for the chat channels' subscription. */
  subscriber: RedisClient;
  /** The wait for replicas before a chat change is acknowledged (HUB_REDIS_ACK_REPLICAS); none when absent. */
  ack?: ReplicaAck | undefined;
  config: { attachmentKey: Buffer | null; attachmentMaxBytes: number; messagesPerSecond: number; attachmentsDir: string; quotas: ChatQuotas };
  nodeId: string;
  clinics: ClinicRegistry;
  /** Checks the bearer tokens of the attachment routes. */
  authenticator: Authenticator;
  /** The queue's active ticket, for opening patient threads. */
  findTicket(clinic: string, ticketId: string): Promise<{ number: string } | null>;
  logger: Logger;
  metrics: HubMetrics;
  maxPayloadBytes: number;
  /** The node's rate limits and drain state (hub.ts); without them chat events are neither limited nor tracked. */
  guards: NodeGuards;
  /** Told of each new message a clinician sends in a patient's thread. */
  onClinicianReply?: (clinic: string, ticketId: string, messageId: string) => void;
}

export interface RunningChat {
  service: ChatService;
  /** HTTP routes for attachments, for `createRoutes({ domainRoutes })`. */
  routes: (request: HttpRequest) => Promise<HttpResponse | null>;
  /** The upload route's body limit, for the HTTP server. */
  bodyLimit: (method: string, path: string) => BodyLimit | undefined;
  /** Takes this node's clinicians out of presence; call after the sockets are closed. */
  close(): Promise<void>;
}

/**
 * A staff channel with these members, made directly in Redis (no hub needed):
 * for set-up scripts and benchmarks, such as the 500-member channel of
 * `bench:chat`. Creating it again with the same id and creator is harmless.
 */
export async function createStaffChannel(
  redis: RedisClient,
  clinic: string,
  channel: { id: string; title: string; members: string[]; createdBy: string },
): Promise<ChatThread> {
  const service = new ChatService(redis, { findTicket: async () => null, attachmentKey: null, attachmentMaxBytes: 0 });
  const created = await service.createThread(
    clinic,
    { sub: channel.createdBy, role: 'staff', ticket: null, address: 'set-up' },
    { kind: 'staff', id: channel.id, title: channel.title, members: channel.members },
  );
  if (!created.ok) throw new Error(`${created.error.code}: ${created.error.message}`);
  return created.thread;
}

/** Wires chat into a hub node: service, presence, live fan-out, socket handlers and HTTP routes. */
export async function startChat(options: ChatOptions): Promise<RunningChat> {
  const { config, logger } = options;
  if (!config.attachmentKey) logger.warn('HUB_ATTACHMENT_KEY is not set: chat attachments are off (uploads answer CHAT_ATTACHMENTS_DISABLED)');
  const service = new ChatService(options.redis, {
    findTicket: options.findTicket,
    attachmentKey: config.attachmentKey,
    attachmentMaxBytes: config.attachmentMaxBytes,
    attachmentStorage: new FileAttachmentStorage(resolve(config.attachmentsDir)),
    attachmentKeepSeconds: (clinic) => (options.clinics.get(clinic)?.retention.chatAttachmentDays ?? DEFAULT_RETENTION.chatAttachmentDays) * 86_400,
    threadKeepSeconds: (clinic, kind) => chatKeepSeconds(options.clinics.get(clinic)?.retention ?? DEFAULT_RETENTION, kind),
    quotas: config.quotas,
    ack: options.ack,
  });
  // Files of attachments past their retention (their metadata expired in Redis) go within a sweep period.
  const sweep = () =>
    void service
      .sweepAttachmentFiles()
      .then((deleted) => deleted > 0 && logger.info({ deleted }, 'deleted the files of expired chat attachments'))
      .catch((error: Error) => logger.warn({ err: error.message }, 'chat attachment sweep failed; it runs again later'));
  const sweeper = config.attachmentKey ? setInterval(sweep, ATTACHMENT_SWEEP_MS).unref() : null;
  const clinicIds = options.clinics.ids();
  const presence = new ChatPresence(service.store, { nodeId: options.nodeId, clinicIds, logger });
  await presence.start();
  const fanout = await startChatFanout(options.subscriber, options.nsp, { store: service.store, clinicIds, metrics: options.metrics, logger });
  registerChatHandlers(options.nsp, {
    chat: service,
    presence,
    fanout,
    logger,
    metrics: options.metrics,
    maxPayloadBytes: options.maxPayloadBytes,
    messagesPerSecond: config.messagesPerSecond,
    guards: options.guards,
    ...(options.onClinicianReply ? { onClinicianReply: options.onClinicianReply } : {}),
  });
  return {
    service,
    routes: createChatRoutes({ authenticator: options.authenticator, chat: service }),
    bodyLimit: chatBodyLimit(service),
    close: () => {
      if (sweeper) clearInterval(sweeper);
      return presence.stop();
    },
  };
}
