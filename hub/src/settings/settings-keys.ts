/** Every Redis key and channel of clinic settings (one hash slot per clinic, as the queue's keys). */
export const settingsKey = (clinic: string) => `ch:{${clinic}}:settings`;
/** Every hub node listens here: `{ clinic, version }` after each change (and each seed). */
export const SETTINGS_CHANNEL = 'ch:settings:changed';
