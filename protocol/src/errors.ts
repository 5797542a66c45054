/**
 * Every error a client can receive, in acks, HTTP responses and CLI messages.
 * The code is the contract; the message is for people and may change.
 * docs/protocol.md lists the same table.
 */
export const ERROR_CODES = {
  AUTH_REQUIRED: 'No token was given. Connect with auth: { token }.',
  AUTH_INVALID: 'The token is malformed or its signature does not verify. Ask an admin for a new token.',
  AUTH_EXPIRED: 'The token has expired. Refresh it (auth:refresh) before it expires, or ask for a new one.',
  AUTH_FORBIDDEN: 'Your role may not do this.',
  AUTH_WRONG_CLINIC: 'The token is for another clinic.',
  AUTH_REVOKED: 'The token was revoked by an admin (the token, its user or its clinic). Ask an admin for a new one.',
  AUTH_SESSION_EXPIRED: 'The session has reached its maximum age: auth:refresh gives no more tokens. Sign in again or ask for a new token.',
  INVALID_PAYLOAD: 'The payload does not match the event schema.',
  PAYLOAD_TOO_LARGE: 'The payload is larger than the hub accepts.',
  PAYLOAD_TOO_DEEP: 'The payload nests objects or arrays deeper than any event needs (8 levels, counting the arguments).',
  UNKNOWN_EVENT: 'The hub does not know this event name.',
  RATE_LIMITED: 'Too many requests; slow down and retry.',
  ORIGIN_NOT_ALLOWED: 'Pages on this origin may not call the hub. Add the origin to HUB_ALLOWED_ORIGINS.',
  HUB_DRAINING: 'This hub node is shutting down. Your client reconnects to another node by itself; then retry with the same requestId.',
  STORE_UNAVAILABLE: 'The hub cannot reach Redis, or Redis did not answer in time. Retry with the same requestId: the action is done once, and a retry of one that was done late says so (replayed).',
  INTERNAL: 'Unexpected server error. It has been logged.',
  NOT_FOUND: 'No such route.',
  NAMESPACE_NOT_FOUND: 'The hub serves the namespaces /queue, /chat, /consult and /notify; the root namespace serves nothing.',
  METHOD_NOT_ALLOWED: 'This route does not take this HTTP method.',
  CLINIC_NOT_FOUND: 'No clinic with this id is configured.',
  WEBHOOK_NOT_FOUND: 'No webhook endpoint with this id in this clinic.',
  SETTINGS_VERSION_CONFLICT: "The clinic's settings were changed by someone else since you read them (ifVersion). Read them again, reapply your change and save.",
  SETTINGS_DEPT_HAS_TICKETS: 'The change removes a department that still has live tickets (waiting, called or in consultation); detail names them. Finish, cancel or mark them no-show first, then save again.',
  SETTINGS_ROOM_HAS_TICKETS: 'The change removes a room that a live ticket is called to or in consultation in; detail names them. Finish or skip them first (or close the room instead), then save again.',
  QUEUE_DEPT_NOT_FOUND: 'No department with this id in this clinic.',
  QUEUE_ROOM_NOT_FOUND: 'No room with this id in this department.',
  QUEUE_ROOM_BUSY: 'The room already has a called patient who has not started. Recall, skip or mark them done first.',
  QUEUE_EMPTY: 'Nobody is waiting in this department.',
  QUEUE_DEPT_ONLINE: 'This is an online department: its patients are admitted to a video consultation (consult:admit), which gives them the join button, not called to a room.',
  QUEUE_TICKET_NOT_FOUND: 'No active ticket with this id.',
  QUEUE_INVALID_TRANSITION: 'The ticket is not in a state that allows this action.',
  QUEUE_RESUME_TOO_OLD: 'The requested sequence is no longer in the event stream; take a snapshot.',
  CHECKIN_DEPT_NOT_OFFERED: 'Patients cannot check themselves in to this department (selfCheckin.departments in the clinic file); reception can.',
  CHECKIN_MOBILE_OFF: 'This clinic takes no check-ins from phones, or this poster has been withdrawn: check in at the kiosk or at reception.',
  CHECKIN_CLOSED: 'The clinic is closed now: check-in from a phone opens with the clinic (openingHours in the clinic file); detail says when.',
  APPOINTMENT_NOT_FOUND: 'No appointment with this id or arrival code (check the code in the reminder, or ask at reception).',
  APPOINTMENT_TOO_EARLY: 'It is too early to arrive for this appointment (selfCheckin.arrivalOpensMinutesBefore); detail says from when.',
  APPOINTMENT_ALREADY_ARRIVED: 'This appointment has already been checked in and that visit has ended.',
  NOTIFY_CHANNEL_DISABLED: 'This notification channel is not configured on the server. Configure it, then retry the dead letter.',
  NOTIFY_CONTACT_INVALID: 'The contact does not fit its channel (e-mail address, +E.164 phone number, LINE user id or hub user id).',
  NOTIFY_PROVIDER_REJECTED: 'The provider refused the message for good (unknown address, blocked user, bad credentials); it is not retried.',
  NOTIFY_PROVIDER_FAILED: 'The provider failed or could not be reached; the notification is retried with backoff.',
  NOTIFY_PROVIDER_TIMEOUT: 'The provider did not answer in time; the notification is retried with the same idempotency key.',
  NOTIFY_WORKER_LOST: 'The worker delivering this notification stopped too many times while sending.',
  NOTIFY_APPOINTMENT_PAST: 'The appointment time has already passed; no reminder was scheduled.',
  NOTIFY_APPOINTMENT_NOT_FOUND: 'No reminders are scheduled for this appointment.',
  NOTIFY_DEAD_LETTER_NOT_FOUND: 'No dead-lettered notification with this id.',
  NOTIFY_WEB_PUSH_OFF: 'Web Push is not configured on this hub (NOTIFY_WEB_PUSH_VAPID_*): notices reach the open page only.',
  NOTIFY_PUSH_ENDPOINT_REFUSED: 'This push service is not one the hub sends to (NOTIFY_WEB_PUSH_ENDPOINT_HOSTS).',
  NOTIFY_LINE_LINK_OFF: 'LINE linking is not configured on this hub (NOTIFY_LINE_CHANNEL_SECRET, NOTIFY_LINE_BASIC_ID and the LINE channel).',
  NOTIFY_LINE_SIGNATURE_INVALID: 'The x-line-signature header does not match the body for the channel secret: the request did not come from LINE.',
  NOTIFY_KEY_INVALID: 'An idempotency key is 1–160 letters, digits, ".", "_" or "-".',
  CHAT_THREAD_NOT_FOUND: 'No such chat thread. A patient thread is created when it is first opened while its ticket is in the queue.',
  CHAT_THREAD_EXISTS: 'A thread with this id already exists and was not created by you as this kind.',
  CHAT_NOT_MEMBER: 'You are not a member of this chat thread: you may not read or write it.',
  CHAT_NOT_JOINED: 'Join the thread (chat:join) before sending this event for it.',
  CHAT_MEMBERS_FIXED: 'Who reads a patient thread follows from the ticket and the clinic\'s roles; it has no member list to edit.',
  CHAT_MESSAGE_EMPTY: 'A message needs text or at least one attachment.',
  CHAT_MESSAGE_TOO_LONG: 'The message text is longer than the hub accepts (2000 characters).',
  CHAT_ATTACHMENT_NOT_FOUND: 'No such attachment in this thread uploaded by you (or it expired before it was sent).',
  CHAT_ATTACHMENT_TYPE_NOT_ALLOWED: 'Attachments must be PNG, JPEG or WebP images or PDF documents, and their content must match the declared type.',
  CHAT_ATTACHMENT_TOO_LARGE: 'The attachment is larger than the hub accepts.',
  CHAT_ATTACHMENTS_DISABLED: 'Attachments are not configured on this hub (HUB_ATTACHMENT_KEY is not set).',
  CHAT_QUOTA_EXCEEDED: 'Too many chat messages or attachment bytes in this window for you, this thread or this clinic; the detail says which and in how many seconds the window ends.',
  MEDIA_NOT_JOINED: 'Send join with a room token first.',
  MEDIA_SIGNAL_DOWN: 'The signalling connection to the media-server is down; the page connects again by itself (the media may go on meanwhile). Try again in a moment. Given by the page, never by the server.',
  MEDIA_ALREADY_JOINED: 'This connection has already joined a room.',
  MEDIA_ROOM_FULL: 'The consultation room already has six participants.',
  MEDIA_WRONG_ROOM: 'The room token is for another consultation or another media-server node. Ask the hub for a new one.',
  MEDIA_STALE_ANSWER: 'The answer is for an offer that is no longer current; answer the latest offer.',
  MEDIA_SDP_INVALID: 'The SDP could not be applied. Rejoin to start a fresh connection.',
  MEDIA_PARAMETERS_INVALID: 'The transport, RTP or DTLS parameters could not be applied (mediasoup refused them). Rejoin to start fresh transports.',
  MEDIA_TRANSPORT_NOT_FOUND: 'No such transport or consumer of this participant (it was closed, or the media worker restarted): create transports again.',
  MEDIA_WRONG_ENGINE: 'This message belongs to the other media engine\'s signalling: `joined.media.engine` says which one this node speaks.',
  MEDIA_NODE_UNAVAILABLE: 'No media-server node is available to host the consultation. Start one, or retry shortly.',
  CONSULT_NOT_FOUND: 'No such consultation in this clinic.',
  CONSULT_ENDED: 'The consultation has ended.',
  CONSULT_NOT_PARTICIPANT: 'You are not a participant of this consultation.',
  CONSULT_DISABLED: 'Video consultations are not configured on this hub (MEDIA_TOKEN_SECRET is not set).',
  CONSULT_DEPT_NOT_ONLINE: 'This department is not an online department: its patients are called to a room, not admitted to a video consultation.',
  RECORDING_CONSENT_MISSING: 'Recording waits until every participant present has consented.',
  RECORDING_NOT_FOUND: 'No such recording (or it has been purged by the retention policy).',
  RECORDING_IN_PROGRESS: 'The recording is still being made: it can be purged once it has stopped (a clinician stops it, or the consultation ends).',
  RECORDING_KEY_MISSING: 'Recording is not configured on this media-server (RECORDING_KEY is not set).',
  RECORDING_NOT_ALLOWED: 'This clinic does not record its consultations (its settings: recording.allowed is false).',
  RECORDING_CORRUPT: 'The recording failed its integrity check (wrong key or damaged file); it was not exported.',
  RECORDING_METADATA_INVALID: 'The recording\'s metadata in Redis holds a file entry no media-server writes (a name or checksum of the wrong form); nothing was read from disk or exported.',
  AI_JOB_INVALID: 'The AI job does not match its schema (clinic, consult, language, recording); it was not run and is not retried.',
  AI_AUDIO_INVALID: 'An audio tap entry is malformed (fields p, r, t, pcm, end); it was skipped and the session goes on.',
  AI_ENGINE_FAILED: 'The speech-to-text or emotion engine failed on an utterance; it was skipped and the session goes on.',
  AI_ENGINE_UNAVAILABLE: 'The speech-to-text service cannot be reached or refused the connection (check DEEPGRAM_API_KEY and DEEPGRAM_URL); the worker keeps retrying.',
  AI_MODEL_UNKNOWN: 'No model with this name in the models manifest (`clinic models list` shows them).',
  AI_MODEL_UNPINNED: 'The manifest gives no revision or SHA-256 for a file of this model: pin it (docs/ai-workers.md, "Pinning a model") before pulling.',
  AI_MODEL_MISSING: 'A model the worker is configured to use, or one of its files, is not in the models directory. Run `clinic models pull NAME`.',
  AI_MODEL_INVALID: 'A model in the models directory is damaged or does not fit its engine (inputs, outputs, vocabulary, labels). Run `clinic models pull NAME --force`.',
  AI_MODEL_CHECKSUM_MISMATCH: 'A downloaded model file does not match the SHA-256 in the manifest; nothing was installed.',
  AI_MODEL_DOWNLOAD_FAILED: 'The model hub could not be reached or did not serve a file of the model; nothing was installed.',
  AI_SESSION_STALLED: 'The live AI session\'s job stalled (its lock lapsed) more than AI_MAX_STALLED times without running well in between (a worker dying on it each time); it failed, and the consultation goes on without live transcripts.',
  AI_RECORDING_UNAVAILABLE: 'The recording cannot be read for transcription (not final, purged, or its audio cannot be decoded).',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface ProtocolError {
  code: ErrorCode;
  message: string;
  /** Optional detail (which field failed validation, which limit was hit). Never patient data. */
  detail?: string;
}

export function protocolError(code: ErrorCode, detail?: string): ProtocolError {
  return detail === undefined ? { code, message: ERROR_CODES[code] } : { code, message: ERROR_CODES[code], detail };
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

/** Every ack has this shape: `{ ok: true, ...data }` or `{ ok: false, error }`. */
export type Ack<T extends object = object> = ({ ok: true } & T) | { ok: false; error: ProtocolError };

/** The error ack for a code (an `Ack<T>` of any T): what every domain returns when it refuses. */
export function fail(code: ErrorCode, detail?: string): { ok: false; error: ProtocolError } {
  return { ok: false, error: protocolError(code, detail) };
}
