import { HTTPFetchError, messagingApi } from '@line/bot-sdk';
import { DeliveryError, isRetryableStatus, type ChannelSender, type Delivery, type OutgoingNotice } from './channel-types.js';

/**
 * LINE Messaging API push (POST /v2/bot/message/push) through @line/bot-sdk's
 * MessagingApiClient, whose `baseURL` option points it at another endpoint
 * (NOTIFY_LINE_API_BASE_URL; tests use a local server).
 *
 * Every attempt of one notification sends the same X-Line-Retry-Key. LINE
 * accepts a key once and answers a repeat with 409 and the accepted request's
 * id, so a retry after a worker died between LINE accepting and our send
 * record being written is recognised as already sent rather than pushed twice
 * (LINE remembers retry keys for 24 hours).
 */
export class LineChannel implements ChannelSender {
  readonly channel = 'line' as const;
  private readonly client: messagingApi.MessagingApiClient;

  constructor(options: { channelAccessToken: string; baseUrl: string }) {
    this.client = new messagingApi.MessagingApiClient({ channelAccessToken: options.channelAccessToken, baseURL: options.baseUrl });
  }

  async send(notice: OutgoingNotice): Promise<Delivery> {
    try {
      const response = await this.client.pushMessage(
        { to: notice.to, messages: [{ type: 'text', text: `${notice.rendered.title}\n${notice.rendered.body}` }] },
        notice.providerKey,
      );
      return { providerId: response.sentMessages[0]?.id ?? `line:${notice.providerKey}` };
    } catch (error) {
      if (error instanceof HTTPFetchError) {
        if (error.status === 409) return { providerId: acceptedMessageId(error) ?? `line:${notice.providerKey}` };
        const permanent = !isRetryableStatus(error.status);
        throw new DeliveryError(permanent ? 'NOTIFY_PROVIDER_REJECTED' : 'NOTIFY_PROVIDER_FAILED', `line ${error.status}`, {
          permanent,
          notAccepted: true,
        });
      }
      // fetch failed (refused, reset, aborted): LINE may have the request; the retry key settles it.
      throw new DeliveryError('NOTIFY_PROVIDER_FAILED', `line ${(error as Error).name}`, { permanent: false, notAccepted: false });
    }
  }
}

function acceptedMessageId(error: HTTPFetchError): string | null {
  try {
    const body = JSON.parse(error.body) as { sentMessages?: { id?: string }[] };
    const id = body.sentMessages?.[0]?.id;
    if (id) return id;
  } catch {
    // no JSON body: fall back to the header
  }
  const requestId = error.headers.get('x-line-accepted-request-id');
  return requestId ? `line-request:${requestId}` : null;
}
