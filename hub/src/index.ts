export { startHub, type RunningHub } from './hub.js';
export { loadConfig, ConfigError, type HubConfig } from './config.js';
export { TokenIssuer } from '@clinic-hub/platform/token-issuer';
export { ClinicRegistry } from './clinics/clinic-registry.js';
export { QueueService } from './queue/queue-service.js';
export { ChatService, ChatStore, startChat, createStaffChannel, chatKeys, type ChatCaller } from './chat/index.js';
