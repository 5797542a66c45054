import { WebhookEndpointInput, protocolError } from '@clinic-hub/protocol';
import { appendAudit } from '../audit/audit-log.js';
import type { Authenticator } from '../auth/authenticator.js';
import type { ClinicRegistry } from '../clinics/clinic-registry.js';
import { clinicCaller } from '../http/bearer.js';
import type { HttpRequest, HttpResponse } from '../http/http-types.js';
import { errorResponse, isResponse, json, readJsonBody } from '../http/routes.js';
import { publicEndpoint, type WebhookStore } from './webhook-store.js';

const PATH = /^\/api\/clinics\/([A-Za-z0-9_-]{1,32})\/webhooks(?:\/(deliveries|wh_[A-Za-z0-9_-]{1,32})(?:\/(rotate-secret))?)?$/;

export interface WebhookRouteDeps {
  authenticator: Authenticator;
  clinics: ClinicRegistry;
  store: WebhookStore;
  redis: Parameters<typeof appendAudit>[0];
}

/**
 * A clinic's webhook endpoints over HTTP (admin; docs/webhooks.md):
 * `GET|POST /api/clinics/:clinic/webhooks`, `DELETE …/webhooks/:id`,
 * `POST …/webhooks/:id/rotate-secret`, `GET …/webhooks/deliveries?count=N`.
 * A secret is shown once, when made. Every change is audited.
 */
export function createWebhookRoutes(deps: WebhookRouteDeps): (request: HttpRequest) => Promise<HttpResponse | null> {
  return async (request) => {
    const match = PATH.exec(request.path);
    if (!match) return null;
    const [, clinic, sub, action] = match as unknown as [string, string, string | undefined, string | undefined];
    const caller = await clinicCaller(deps.authenticator, request, clinic, ['admin'], 'only admins manage webhooks');
    if (!('role' in caller)) return caller;
    if (!deps.clinics.get(clinic)) return errorResponse('CLINIC_NOT_FOUND', clinic);
    const audit = (what: string, subject: string) => appendAudit(deps.redis, clinic, { actor: caller.sub, role: caller.role, action: what, subject, from: request.remoteAddress });
    const method = request.method;

    if (sub === undefined) {
      if (method === 'GET') return json(200, { endpoints: (await deps.store.list(clinic)).map(publicEndpoint) });
      if (method !== 'POST') return json(405, { error: protocolError('METHOD_NOT_ALLOWED', 'use GET or POST') }, { allow: 'GET, POST' });
      const body = readJsonBody(request, WebhookEndpointInput);
      if (isResponse(body)) return body;
      const endpoint = await deps.store.create(clinic, { ...body, createdBy: caller.sub });
      await audit('webhook.create', `${endpoint.id} ${endpoint.url}`);
      return json(201, { endpoint: publicEndpoint(endpoint), secret: endpoint.secret });
    }
    if (sub === 'deliveries') {
      if (method !== 'GET' || action) return json(405, { error: protocolError('METHOD_NOT_ALLOWED', 'use GET') }, { allow: 'GET' });
      const count = Number(request.query.get('count') ?? 50);
      if (!Number.isInteger(count) || count < 1 || count > 500) return errorResponse('INVALID_PAYLOAD', 'count: a whole number from 1 to 500');
      return json(200, { deliveries: await deps.store.deliveries(clinic, count) });
    }
    if (action === 'rotate-secret') {
      if (method !== 'POST') return json(405, { error: protocolError('METHOD_NOT_ALLOWED', 'use POST') }, { allow: 'POST' });
      const rotated = await deps.store.rotate(clinic, sub);
      if (!rotated) return errorResponse('WEBHOOK_NOT_FOUND', sub);
      await audit('webhook.rotate-secret', sub);
      return json(200, { endpoint: publicEndpoint(rotated), secret: rotated.secret, previousSecretUntil: rotated.previousSecretUntil });
    }
    if (method !== 'DELETE') return json(405, { error: protocolError('METHOD_NOT_ALLOWED', 'use DELETE') }, { allow: 'DELETE' });
    if (!(await deps.store.remove(clinic, sub))) return errorResponse('WEBHOOK_NOT_FOUND', sub);
    await audit('webhook.remove', sub);
    return json(200, { ok: true, id: sub });
  };
}
