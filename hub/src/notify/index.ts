/**
 * The notify domain's surface for the hub, the CLI and the worker process.
 * docs/notifications.md describes channels, configuration and guarantees.
 */
export { loadNotifyConfig, type NotifyConfig } from './notify-config.js';
export {
  NotificationService,
  REMINDER_OFFSETS_MS,
  type EnqueueInput,
  type ScheduleRemindersInput,
  type ReminderKind,
} from './notification-service.js';
export { startNotificationWorker, type RunningNotificationWorker, type NotificationWorkerOptions } from './notification-worker.js';
export { registerNotifyHandlers } from './notify-handlers.js';
export { startNotifyLive } from './notify-live.js';
export type { Recipient, NoticeVars, NotificationOutcome } from './notify-types.js';
