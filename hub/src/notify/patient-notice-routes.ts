import type { RedisClient } from '@clinic-hub/platform/redis';
import { WebPushSubscription, protocolError, type NotifyLocale, type PatientNoticeSettings } from '@clinic-hub/protocol';
import { appendAudit } from '../audit/audit-log.js';
import type { Authenticator } from '../auth/authenticator.js';
import type { ClinicRegistry } from '../clinics/clinic-registry.js';
import { bearerCaller } from '../http/bearer.js';
import type { HttpRequest, HttpResponse } from '../http/http-types.js';
import { errorResponse, isResponse, json, readJsonBody } from '../http/routes.js';
import { endpointAllowed } from './channels/web-push-sender.js';
import type { LineLinkService } from './line-link.js';
import type { NotificationService } from './notification-service.js';
import type { NotifyConfig } from './notify-config.js';
import type { PatientPageStore } from './patient-page-store.js';

const ROUTES = {
  settings: '/api/patient/notices',
  push: '/api/patient/push-subscription',
  contact: '/api/patient/contact',
  lineLink: '/api/patient/line-link',
  lineWebhook: '/api/line/webhook',
} as const;

export interface PatientNoticeRouteDeps {
  authenticator: Authenticator;
  redis: RedisClient;
  clinics: ClinicRegistry;
  notifications: NotificationService;
  pages: PatientPageStore;
  webPush: NotifyConfig['webPush'];
  /** LINE linking; null when the hub has none configured. */
  line: LineLinkService | null;
  /** How long a patient's link code lasts: their token's lifetime. */
  linkSeconds: number;
}

const allow = (methods: string[]) => json(405, { error: protocolError('METHOD_NOT_ALLOWED', `use ${methods.join(' or ')}`) }, { allow: methods.join(', ') });

/**
 * How a patient's notices reach them, set from their own ticket page with
 * their patient token (docs/notifications.md, "The patient's page"):
 *
 * - `GET /api/patient/notices`: the channel, the VAPID public key, whether
 *   the ticket has a push subscription and whether LINE linking is offered.
 * - `PUT|DELETE /api/patient/push-subscription`: the page's Web Push
 *   subscription (`PushSubscription.toJSON()`).
 * - `POST /api/patient/line-link`: a one-time LINE link code.
 * - `DELETE /api/patient/contact`: the notices go back to the page (a phone
 *   number or LINE user id is forgotten).
 *
 * And LINE's webhook, `POST /api/line/webhook`, checked by its signature.
 */
export function createPatientNoticeRoutes(deps: PatientNoticeRouteDeps) {
  return async (request: HttpRequest): Promise<HttpResponse | null> => {
    if (request.path === ROUTES.lineWebhook) return lineWebhook(request);
    if (!Object.values(ROUTES).includes(request.path as (typeof ROUTES)[keyof typeof ROUTES])) return null;
    const caller = await bearerCaller(deps.authenticator, request);
    if (!('role' in caller)) return caller;
    if (caller.role !== 'patient' || !caller.ticket) return errorResponse('AUTH_FORBIDDEN', "a patient's token (their ticket page's)");
    const clinic = caller.clinic;
    const ticket = caller.ticket;
    const retentionSeconds = Math.round((deps.clinics.get(clinic)?.patientDataRetentionHours ?? 24) * 3600);
    const audit = (action: string) => appendAudit(deps.redis, clinic, { actor: caller.sub, role: 'patient', action, subject: ticket, from: request.remoteAddress });

    switch (request.path) {
      case ROUTES.settings: {
        if (request.method !== 'GET') return allow(['GET']);
        const contact = await deps.notifications.contacts.ticketContact(clinic, ticket);
        const settings: PatientNoticeSettings = {
          channel: contact?.channel ?? null,
          webPush: deps.webPush ? { publicKey: deps.webPush.publicKey } : null,
          pushSubscribed: (await deps.pages.pushSubscription(clinic, ticket)) !== null,
          line: deps.line !== null,
        };
        return json(200, settings);
      }
      case ROUTES.push: {
        if (request.method === 'DELETE') {
          const removed = await deps.pages.clearPushSubscription(clinic, ticket);
          return json(200, { ok: true, removed });
        }
        if (request.method !== 'PUT') return allow(['PUT', 'DELETE']);
        if (!deps.webPush) return errorResponse('NOTIFY_WEB_PUSH_OFF');
        const subscription = readJsonBody(request, WebPushSubscription);
        if (isResponse(subscription)) return subscription;
        if (!endpointAllowed(subscription.endpoint, deps.webPush.endpointHosts)) return errorResponse('NOTIFY_PUSH_ENDPOINT_REFUSED', new URL(subscription.endpoint).hostname);
        await deps.pages.setPushSubscription(clinic, ticket, subscription, retentionSeconds);
        await audit('notify.push.subscribe');
        return json(200, { ok: true });
      }
      case ROUTES.lineLink: {
        if (request.method !== 'POST') return allow(['POST']);
        if (!deps.line) return errorResponse('NOTIFY_LINE_LINK_OFF');
        const contact = await deps.notifications.contacts.ticketContact(clinic, ticket);
        const locale: NotifyLocale = contact?.locale ?? (request.query.get('locale') === 'en' ? 'en' : 'ja');
        return json(201, await deps.line.create(clinic, ticket, locale, deps.linkSeconds));
      }
      case ROUTES.contact: {
        if (request.method !== 'DELETE') return allow(['DELETE']);
        const contact = await deps.notifications.contacts.ticketContact(clinic, ticket);
        if (contact?.channel === 'line' && deps.line) await deps.line.unlinkTicket(clinic, ticket);
        const stored = await deps.notifications.setTicketContact(clinic, ticket, { channel: 'in_app', address: `patient:${ticket}`, locale: contact?.locale ?? 'ja' });
        if (!stored.ok) return errorResponse(stored.error.code, stored.error.detail);
        await audit(`notify.contact.unlink.${contact?.channel ?? 'none'}`);
        return json(200, { ok: true, channel: 'in_app', was: contact?.channel ?? null });
      }
      default:
        return null;
    }
  };

  async function lineWebhook(request: HttpRequest): Promise<HttpResponse> {
    if (request.method !== 'POST') return allow(['POST']);
    if (!deps.line) return errorResponse('NOTIFY_LINE_LINK_OFF');
    const parsed = await deps.line.parseWebhook(request.body, request.headers['x-line-signature']);
    if (!parsed.ok) return errorResponse(parsed.code, parsed.code === 'INVALID_PAYLOAD' ? 'body is not JSON' : undefined);
    await deps.line.handle(parsed.callback, request.remoteAddress);
    return json(200, {});
  }
}
