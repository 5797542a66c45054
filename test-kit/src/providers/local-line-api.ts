import { randomBytes, randomUUID } from 'node:crypto';
import { LocalHttpProvider, json } from './http-provider.js';

export interface AcceptedPush {
  to: string;
  messages: { type: string; text?: string }[];
  retryKey: string | null;
  sentMessages: { id: string; quoteToken: string }[];
}

/**
 * A local server speaking the LINE Messaging API's push endpoint as LINE
 * documents it: POST /v2/bot/message/push with `Authorization: Bearer
 * <channel access token>` and JSON `{ to, messages }`, answering
 * `{ sentMessages: [{ id, quoteToken }] }` with an `x-line-request-id`. An
 * `X-Line-Retry-Key` already accepted gets 409 with
 * `x-line-accepted-request-id` and the first request's `sentMessages`, and the
 * message is not sent again. Replies to webhook events go to POST
 * /v2/bot/message/reply with `{ replyToken, messages }`; a reply token is
 * good once.
 */
export class LocalLineApi extends LocalHttpProvider {
  readonly accepted: AcceptedPush[] = [];
  /** Replies to webhook events (POST /v2/bot/message/reply), in order. */
  readonly replies: { replyToken: string; messages: { type: string; text?: string }[] }[] = [];
  private readonly byRetryKey = new Map<string, { requestId: string; push: AcceptedPush }>();

  constructor(readonly channelAccessToken: string) {
    super((request, res) => {
      const paths = ['/v2/bot/message/push', '/v2/bot/message/reply'];
      if (request.method !== 'POST' || !paths.includes(request.path)) return json(res, 404, { message: 'Not found' });
      if (request.headers.authorization !== `Bearer ${this.channelAccessToken}`) {
        return json(res, 401, { message: 'Authentication failed. Confirm that the access token in the authorization header is valid.' });
      }
      if (request.path === '/v2/bot/message/reply') {
        // LINE: a reply token is good once, for a short time after its event; {} on success.
        const body = JSON.parse(request.body) as { replyToken?: unknown; messages?: unknown };
        if (typeof body.replyToken !== 'string' || !Array.isArray(body.messages) || body.messages.length === 0 || body.messages.length > 5) {
          return json(res, 400, { message: 'The request body has 1 error(s)' });
        }
        if (this.replies.some((r) => r.replyToken === body.replyToken)) return json(res, 400, { message: 'Invalid reply token' });
        this.replies.push({ replyToken: body.replyToken, messages: body.messages as { type: string; text?: string }[] });
        return json(res, 200, { sentMessages: (body.messages as unknown[]).map(() => ({ id: String(BigInt(`0x${randomBytes(7).toString('hex')}`)), quoteToken: randomBytes(16).toString('base64url') })) }, { 'x-line-request-id': randomUUID() });
      }
      let body: { to?: unknown; messages?: unknown };
      try {
        body = JSON.parse(request.body) as typeof body;
      } catch {
        return json(res, 400, { message: 'The request body has 1 error(s)' });
      }
      if (typeof body.to !== 'string' || !Array.isArray(body.messages) || body.messages.length === 0 || body.messages.length > 5) {
        return json(res, 400, { message: 'The request body has 1 error(s)', details: [{ message: 'invalid', property: 'to/messages' }] });
      }
      const retryKey = (request.headers['x-line-retry-key'] as string | undefined) ?? null;
      if (retryKey !== null) {
        if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(retryKey)) {
          return json(res, 400, { message: 'The value of the X-Line-Retry-Key header is invalid' });
        }
        const previous = this.byRetryKey.get(retryKey);
        if (previous) {
          return json(
            res,
            409,
            { message: 'The retry key is already accepted', sentMessages: previous.push.sentMessages },
            { 'x-line-request-id': randomUUID(), 'x-line-accepted-request-id': previous.requestId },
          );
        }
      }
      const push: AcceptedPush = {
        to: body.to,
        messages: body.messages as AcceptedPush['messages'],
        retryKey,
        sentMessages: (body.messages as unknown[]).map(() => ({ id: String(BigInt(`0x${randomBytes(7).toString('hex')}`)), quoteToken: randomBytes(16).toString('base64url') })),
      };
      const requestId = randomUUID();
      this.accepted.push(push);
      if (retryKey) this.byRetryKey.set(retryKey, { requestId, push });
      json(res, 200, { sentMessages: push.sentMessages }, { 'x-line-request-id': requestId });
    });
  }
}
