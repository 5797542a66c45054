/** The hub's public surface: what `npm start`, the CLI's local stack and the benchmarks start and drive. */
export { startHub, type RunningHub } from './hub.js';
export { loadConfig, ConfigError, type HubConfig } from './config.js';
export { ClinicRegistry } from './clinics/clinic-registry.js';
export { QueueService } from './queue/index.js';
export { startNotificationWorker, NotificationService, loadNotifyConfig, type NotifyConfig } from './notify/index.js';
export { providerKeyOf } from './notify/notification-worker.js';
export { ChatService, ChatStore, startChat, createStaffChannel, chatKeys, type ChatCaller } from './chat/index.js';
export { readAudit } from './audit/audit-log.js';
export { verifyWebhook } from './webhooks/webhook-signature.js';
