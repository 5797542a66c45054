import type { Agent } from 'node:https';
import webPush from 'web-push';
import type { WebPushMessage, WebPushSubscription } from '@clinic-hub/protocol';
import { DeliveryError, isRetryableStatus } from './channel-types.js';

export interface WebPushOptions {
  publicKey: string;
  privateKey: string;
  subject: string;
  /** Push service hosts the hub sends to (`*.push.apple.com` matches subdomains). */
  endpointHosts: string[];
  timeoutMs: number;
  /** The HTTPS agent for push services (tests: one that trusts a local push service's certificate). */
  agent?: Agent;
}

/** Whether a push subscription's endpoint is on one of the allowed push services. */
export function endpointAllowed(endpoint: string, hosts: readonly string[]): boolean {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return false;
  }
  if (url.protocol !== 'https:') return false;
  const host = url.port ? `${url.hostname}:${url.port}` : url.hostname;
  return hosts.some((allowed) => (allowed.startsWith('*.') ? url.hostname.endsWith(allowed.slice(1)) : allowed === host || allowed === url.hostname));
}

/**
 * Web Push (RFC 8030) through the `web-push` library: the message is
 * encrypted to the subscription's keys (RFC 8291, aes128gcm) and the request
 * signed with the hub's VAPID key (RFC 8292). A subscription the push service
 * no longer knows (404, 410) is reported `gone`, for the caller to forget.
 */
export class WebPushSender {
  constructor(private readonly options: WebPushOptions) {}

  allows(subscription: WebPushSubscription): boolean {
    return endpointAllowed(subscription.endpoint, this.options.endpointHosts);
  }

  async send(subscription: WebPushSubscription, message: WebPushMessage, options: { urgent: boolean; ttlSeconds: number }): Promise<{ status: number } | { gone: true }> {
    if (!this.allows(subscription)) throw new DeliveryError('NOTIFY_PROVIDER_REJECTED', 'web push endpoint not allowed', { permanent: true, notAccepted: true });
    try {
      const result = await webPush.sendNotification(subscription, JSON.stringify(message), {
        vapidDetails: { subject: this.options.subject, publicKey: this.options.publicKey, privateKey: this.options.privateKey },
        contentEncoding: 'aes128gcm',
        TTL: options.ttlSeconds,
        urgency: options.urgent ? 'high' : 'normal',
        timeout: this.options.timeoutMs,
        ...(this.options.agent ? { agent: this.options.agent } : {}),
      });
      return { status: result.statusCode };
    } catch (error) {
      if (error instanceof webPush.WebPushError) {
        if (error.statusCode === 404 || error.statusCode === 410) return { gone: true };
        const permanent = !isRetryableStatus(error.statusCode);
        throw new DeliveryError(permanent ? 'NOTIFY_PROVIDER_REJECTED' : 'NOTIFY_PROVIDER_FAILED', `web push ${error.statusCode}`, { permanent, notAccepted: true });
      }
      throw new DeliveryError('NOTIFY_PROVIDER_FAILED', `web push ${(error as Error).name}`, { permanent: false, notAccepted: false });
    }
  }
}
