export { startHub, type RunningHub } from './hub.js';
export { loadConfig, ConfigError, type HubConfig } from './config.js';
export { TokenIssuer } from './auth/tokens.js';
export { ClinicRegistry } from './clinics/clinic-registry.js';
export { QueueService } from './queue/queue-service.js';
export { ChatService, ChatStore, startChat, createStaffChannel, chatKeys, type ChatCaller } from './chat/index.js';
