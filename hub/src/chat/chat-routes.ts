import { CHAT_ATTACHMENTS_PATH, CHAT_ROLES, AttachmentId, ThreadId, protocolError } from '@clinic-hub/protocol';
import type { Authenticator } from '../auth/authenticator.js';
import type { BodyLimit, HttpRequest, HttpResponse } from '../http/http-types.js';
import { errorResponse, json } from '../http/routes.js';
import type { ChatService } from './chat-service.js';
import type { ChatCaller } from './chat-store.js';

export interface ChatRouteDeps {
  authenticator: Authenticator;
  chat: ChatService;
}

const DOWNLOAD = new RegExp(`^${CHAT_ATTACHMENTS_PATH}/([^/]+)$`);

/** The upload route takes bodies up to the attachment limit; a larger one is CHAT_ATTACHMENT_TOO_LARGE. */
export function chatBodyLimit(chat: ChatService): (method: string, path: string) => BodyLimit | undefined {
  return (method, path) => (method === 'POST' && path === CHAT_ATTACHMENTS_PATH ? { maxBytes: chat.attachmentMaxBytes, code: 'CHAT_ATTACHMENT_TOO_LARGE' } : undefined);
}

/**
 * Attachments over HTTP (bearer token, like the rest of the API):
 *
 * - `POST /api/chat/attachments?thread=ID&name=FILE` with the file as the
 *   body and its type as Content-Type → 201 `{ attachment }`; the message
 *   that sends it names its id.
 * - `GET /api/chat/attachments/ID` → the file, to members of its thread;
 *   every read is written to the audit stream.
 *
 * An all-clinics admin token names the clinic with `&clinic=ID`.
 */
export function createChatRoutes(deps: ChatRouteDeps): (request: HttpRequest) => Promise<HttpResponse | null> {
  return async (request) => {
    const download = DOWNLOAD.exec(request.path);
    if (request.path !== CHAT_ATTACHMENTS_PATH && !download) return null;
    const expected = download ? 'GET' : 'POST';
    if (request.method !== expected) return json(405, { error: protocolError('METHOD_NOT_ALLOWED', `use ${expected}`) }, { allow: expected });

    const who = await authenticate(deps, request);
    if ('status' in who) return who;
    const { caller, clinic } = who;

    if (download) {
      if (!AttachmentId.safeParse(download[1]).success) return errorResponse('CHAT_ATTACHMENT_NOT_FOUND');
      const result = await deps.chat.downloadAttachment(clinic, caller, download[1]!);
      if (!result.ok) return errorResponse(result.error.code, result.error.detail);
      const { attachment, bytes } = result;
      const disposition = attachment.type === 'application/pdf' ? 'attachment' : 'inline';
      return {
        status: 200,
        headers: {
          'content-type': attachment.type,
          'content-disposition': `${disposition}; filename*=UTF-8''${encodeURIComponent(attachment.name)}`,
          'cache-control': 'private, no-store',
          // Shown on its own, the file can run nothing and load nothing.
          'content-security-policy': "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox",
        },
        body: bytes,
      };
    }

    const thread = ThreadId.safeParse(request.query.get('thread'));
    if (!thread.success) return errorResponse('INVALID_PAYLOAD', 'thread: a thread id (patient.<ticketId>, consult.<id> or staff.<id>)');
    const result = await deps.chat.uploadAttachment(clinic, caller, {
      threadId: thread.data,
      declaredType: request.headers['content-type'] ?? null,
      name: request.query.get('name'),
      bytes: request.body,
    });
    return result.ok ? json(201, { attachment: result.attachment }) : errorResponse(result.error.code, result.error.detail);
  };
}

async function authenticate(deps: ChatRouteDeps, request: HttpRequest): Promise<{ caller: ChatCaller; clinic: string } | HttpResponse> {
  const header = request.headers.authorization ?? '';
  const checked = await deps.authenticator.checkFor(header.startsWith('Bearer ') ? header.slice(7) : '', request.query.get('clinic'));
  if (!checked.ok) return errorResponse(checked.error.code, checked.error.detail);
  const { token, clinic } = checked;
  if (!CHAT_ROLES.includes(token.role)) return errorResponse('AUTH_FORBIDDEN', `${token.role} tokens cannot use chat`);
  return { caller: { sub: token.sub, role: token.role, ticket: token.ticket ?? null, address: request.remoteAddress }, clinic };
}
