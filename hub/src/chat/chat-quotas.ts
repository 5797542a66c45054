/** Limits of one quota: per user (token sub), per thread and per clinic; 0 turns one off. */
export interface QuotaLimits {
  user: number;
  thread: number;
  clinic: number;
}

/**
 * Chat quotas, counted in Redis so they hold over every socket and hub node
 * (docs/protocol.md, "Quotas"): past one, CHAT_QUOTA_EXCEEDED naming the
 * scope and when its window ends. Fixed windows: messages per minute,
 * attachment bytes per day (UTC).
 */
export interface ChatQuotas {
  messagesPerMinute: QuotaLimits;
  attachmentBytesPerDay: QuotaLimits;
}

export const NO_CHAT_QUOTAS: ChatQuotas = {
  messagesPerMinute: { user: 0, thread: 0, clinic: 0 },
  attachmentBytesPerDay: { user: 0, thread: 0, clinic: 0 },
};

export const MESSAGE_QUOTA_WINDOW_SECONDS = 60;
export const ATTACHMENT_QUOTA_WINDOW_SECONDS = 86_400;

/** The limits as the chat scripts take them: a JSON array in scope order (user, thread, clinic). */
export const quotaArgument = (limits: QuotaLimits) => JSON.stringify([limits.user, limits.thread, limits.clinic]);
