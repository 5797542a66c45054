import type { RedisClient } from '@clinic-hub/platform/redis';
import { z } from 'zod';
import { CLINICIAN_ROLES, NotifyTestRequest, RevokeRequest, Role, protocolError, toPublicClinic, type ErrorCode, type NotifyTestResult, type Revocation } from '@clinic-hub/protocol';
import { appendAudit, auditCsv, queryAudit, type AuditFilter } from '../audit/audit-log.js';
import { TokenError, type VerifiedToken } from '@clinic-hub/platform/tokens';
import type { TokenIssuer } from '@clinic-hub/platform/token-issuer';
import type { Authenticator } from '../auth/authenticator.js';
import { REVOCATION_KEPT_MS } from '../auth/revocation-list.js';
import type { ClinicRegistry } from '../clinics/clinic-registry.js';
import type { HubMetrics } from '../metrics.js';
import type { NotificationService } from '../notify/index.js';
import { opsWorkers } from '@clinic-hub/platform/job-queues';
import { listDisplays } from '../ops/node-registry.js';
import { opsStatus } from '../ops/ops-status.js';
import { clusterWarnings } from '../ops/redis-warnings.js';
import type { QueueService } from '../queue/index.js';
import { isRedisUnavailable, type RedisReplication, type RedisTarget } from '@clinic-hub/platform/redis';
import type { WebAsset } from '../web/web-assets.js';
import type { HttpHandler, HttpRequest, HttpResponse } from './http-types.js';

export interface RouteDeps {
  nodeId: string;
  serverKind: () => string;
  startedAt: number;
  redis: RedisClient;
  /** How the node reaches Redis (REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES), shown by /healthz and `clinic status`. */
  redisMode: RedisTarget['mode'];
  /** The master and its replicas (on a cluster: each shard) as the node sees them now; null when Redis did not answer in time. */
  redisReplication: () => Promise<RedisReplication | null>;
  metrics: HubMetrics;
  tokens: TokenIssuer;
  /** Checks bearer tokens (expiry, revocation, a patient's ticket) and holds the revocation list. */
  authenticator: Authenticator;
  clinics: ClinicRegistry;
  queue: QueueService;
  /** Notification counts, dead letters and retries (`/api/notify`). */
  notifications: NotificationService;
  assets: Map<string, WebAsset>;
  tokenTtlSeconds: (role: string) => number;
  /** False while the node drains or cannot reach Redis: load balancers stop sending new clients. */
  ready: () => boolean;
  /** Pings Redis with a short timeout (a stalled Redis counts as down) and says whether it answered; ready() takes it into account. */
  probeRedis: () => Promise<boolean>;
  /** Routes of other domains (chat attachments): a response, or null when the request is not theirs. */
  domainRoutes?: ((request: HttpRequest) => Promise<HttpResponse | null>)[];
}

const HTTP_STATUS: Partial<Record<ErrorCode, number>> = {
  AUTH_REQUIRED: 401,
  AUTH_INVALID: 401,
  AUTH_EXPIRED: 401,
  AUTH_REVOKED: 401,
  AUTH_SESSION_EXPIRED: 401,
  AUTH_FORBIDDEN: 403,
  AUTH_WRONG_CLINIC: 403,
  INVALID_PAYLOAD: 400,
  PAYLOAD_TOO_LARGE: 413,
  CLINIC_NOT_FOUND: 404,
  QUEUE_ROOM_NOT_FOUND: 404,
  SETTINGS_VERSION_CONFLICT: 409,
  SETTINGS_DEPT_HAS_TICKETS: 409,
  SETTINGS_ROOM_HAS_TICKETS: 409,
  WEBHOOK_NOT_FOUND: 404,
  RECORDING_IN_PROGRESS: 409,
  NOTIFY_DEAD_LETTER_NOT_FOUND: 404,
  NOTIFY_APPOINTMENT_NOT_FOUND: 404,
  APPOINTMENT_NOT_FOUND: 404,
  APPOINTMENT_TOO_EARLY: 409,
  APPOINTMENT_ALREADY_ARRIVED: 409,
  CHECKIN_CLOSED: 403,
  CHECKIN_MOBILE_OFF: 403,
  CHECKIN_DEPT_NOT_OFFERED: 403,
  NOTIFY_WEB_PUSH_OFF: 404,
  NOTIFY_LINE_LINK_OFF: 404,
  NOTIFY_LINE_SIGNATURE_INVALID: 401,
  STORE_UNAVAILABLE: 503,
  RATE_LIMITED: 429,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  CHAT_THREAD_NOT_FOUND: 404,
  CHAT_NOT_MEMBER: 403,
  CHAT_ATTACHMENT_NOT_FOUND: 404,
  CHAT_ATTACHMENT_TOO_LARGE: 413,
  CHAT_ATTACHMENT_TYPE_NOT_ALLOWED: 415,
  CHAT_ATTACHMENTS_DISABLED: 503,
  CHAT_QUOTA_EXCEEDED: 429,
  RECORDING_NOT_FOUND: 404,
  RECORDING_KEY_MISSING: 503,
  RECORDING_CORRUPT: 500,
  RECORDING_METADATA_INVALID: 500,
};

export const json = (status: number, body: unknown, headers: Record<string, string> = {}): HttpResponse => ({
  status,
  headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers },
  body: JSON.stringify(body),
});

export const errorResponse = (code: ErrorCode, detail?: string): HttpResponse =>
  json(HTTP_STATUS[code] ?? 400, { error: protocolError(code, detail) });

/** A request's JSON body checked against `schema`, or the INVALID_PAYLOAD answer (naming the field, or `hint`). */
export function readJsonBody<S extends z.ZodType>(request: HttpRequest, schema: S, hint?: string): z.output<S> | HttpResponse {
  let body: unknown;
  try {
    body = JSON.parse(request.body.toString('utf8'));
  } catch {
    return errorResponse('INVALID_PAYLOAD', 'body is not JSON');
  }
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  return errorResponse('INVALID_PAYLOAD', hint ?? (issue ? `${issue.path.join('.') || '(body)'}: ${issue.message}` : undefined));
}

/** Whether `value` is an answer to send rather than the data a route asked for. */
export const isResponse = (value: unknown): value is HttpResponse =>
  typeof value === 'object' && value !== null && 'status' in value && 'body' in value && typeof (value as HttpResponse).status === 'number';

const IssueTokenBody = z.object({
  role: Role,
  clinic: z.string().min(1).max(64),
  sub: z.string().min(1).max(128).optional(),
  ticket: z.string().min(1).max(64).optional(),
  name: z.string().min(1).max(64).optional(),
  ttlSeconds: z.number().int().min(60).max(30 * 86400).optional(),
});

/** `?actor=&action=&subject=&since=&until=` of an audit query (times: ms or ISO 8601), or what is wrong with it. */
function auditFilterOf(query: URLSearchParams): AuditFilter | string {
  const filter: AuditFilter = {};
  for (const key of ['actor', 'action', 'subject'] as const) {
    const value = query.get(key);
    if (value === null || value === '') continue;
    if (value.length > 200) return `${key}: at most 200 characters`;
    filter[key] = value;
  }
  for (const key of ['since', 'until'] as const) {
    const value = query.get(key);
    if (value === null || value === '') continue;
    const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
    if (!Number.isFinite(ms)) return `${key}: a time in ms since the epoch or ISO 8601`;
    filter[key] = ms;
  }
  return filter;
}

/** The hub's HTTP routes: health, metrics, the admin API and the web pages. */
export function createRoutes(deps: RouteDeps): HttpHandler {
  async function authenticate(request: HttpRequest): Promise<VerifiedToken | HttpResponse> {
    const checked = await deps.authenticator.bearer(request);
    return checked.ok ? checked.token : errorResponse(checked.error.code, checked.error.detail);
  }

  /** What a revocation request covers, checked against what the admin may revoke. */
  function revocationFor(caller: VerifiedToken, input: RevokeRequest): Revocation | HttpResponse {
    const at = Date.now();
    const base = { at, until: at + REVOCATION_KEPT_MS, by: caller.sub, ...(input.reason ? { reason: input.reason } : {}) };
    if ('tokenId' in input) return { ...base, kind: 'token', id: input.tokenId, clinic: caller.clinic };
    if ('token' in input) {
      let token: VerifiedToken;
      try {
        token = deps.tokens.verifySync(input.token);
      } catch (error) {
        const code = error instanceof TokenError ? error.code : 'AUTH_INVALID';
        return errorResponse('INVALID_PAYLOAD', code === 'AUTH_EXPIRED' ? 'token: it has expired already; nothing to revoke' : 'token: not a token of this hub');
      }
      if (!mayActFor(caller, token.clinic)) return errorResponse('AUTH_WRONG_CLINIC', 'the token is of another clinic');
      const id = token.sid ?? token.jti;
      if (!id) return errorResponse('INVALID_PAYLOAD', 'token: it carries no id; revoke its user ({ clinic, sub }) instead');
      return { ...base, kind: 'token', id, clinic: token.clinic };
    }
    if (!mayActFor(caller, input.clinic) || (input.clinic === '*' && caller.clinic !== '*')) return errorResponse('AUTH_WRONG_CLINIC');
    if (input.clinic !== '*' && !deps.clinics.get(input.clinic)) return errorResponse('CLINIC_NOT_FOUND', input.clinic);
    return 'sub' in input ? { ...base, kind: 'user', clinic: input.clinic, sub: input.sub } : { ...base, kind: 'clinic', clinic: input.clinic };
  }

  const mayActFor = (token: VerifiedToken, clinic: string) => token.clinic === '*' || token.clinic === clinic;

  const handle: HttpHandler = async (request) => {
    const { method, path } = request;

    if (path === '/healthz') {
      // A probe answers in bounded time: a Redis that does not answer in time counts as down.
      const redis = (await deps.probeRedis()) ? 'up' : 'down';
      const replication = redis === 'up' ? await deps.redisReplication() : null;
      const body = {
        status: redis === 'up' ? 'ok' : 'degraded',
        node: deps.nodeId,
        server: deps.serverKind(),
        redis,
        redisMode: deps.redisMode,
        redisMaster: replication?.role === 'master' ? replication.address : null,
        redisReplicas: replication?.replicas ?? null,
        ...(replication?.shards && { redisShards: replication.shards, redisWarnings: clusterWarnings(replication.shards) }),
        uptimeSeconds: Math.round((Date.now() - deps.startedAt) / 1000),
      };
      return json(redis === 'up' ? 200 : 503, body);
    }

    if (path === '/readyz') {
      // Asked every second by the load balancer: a Redis that is up but stalled makes the node unready too.
      await deps.probeRedis();
      const ready = deps.ready();
      return json(ready ? 200 : 503, { ready, node: deps.nodeId });
    }

    if (path === '/metrics') {
      return { status: 200, headers: { 'content-type': deps.metrics.registry.contentType }, body: await deps.metrics.registry.metrics() };
    }

    if (path === '/api/tokens') {
      if (method !== 'POST') return json(405, { error: protocolError('METHOD_NOT_ALLOWED', 'use POST') });
      const caller = await authenticate(request);
      if (!('role' in caller)) return caller;
      if (caller.role !== 'admin') return errorResponse('AUTH_FORBIDDEN', 'only admins issue tokens');
      const body = readJsonBody(request, IssueTokenBody);
      if (isResponse(body)) return body;
      const { role, clinic, ticket, ttlSeconds } = body;
      if (!mayActFor(caller, clinic)) return errorResponse('AUTH_WRONG_CLINIC');
      if (clinic !== '*' && !deps.clinics.get(clinic)) return errorResponse('CLINIC_NOT_FOUND', clinic);
      if (role === 'patient' && !ticket) return errorResponse('INVALID_PAYLOAD', 'ticket: required for patient tokens');
      const sub = body.sub ?? `${role}:${clinic}:${Date.now().toString(36)}`;
      try {
        const name = role === 'patient' ? undefined : body.name;
        const issued = await deps.tokens.issue({ sub, role, clinic, ...(ticket ? { ticket } : {}), ...(name ? { name } : {}) }, ttlSeconds ?? deps.tokenTtlSeconds(role));
        return json(201, { token: issued.token, expiresAt: issued.expiresAt, id: issued.id, role, clinic, sub, ...(name ? { name } : {}) });
      } catch {
        return errorResponse('INVALID_PAYLOAD', 'clinic "*" is only for admin and service tokens');
      }
    }

    if (path === '/api/tokens/revoke') {
      if (method !== 'POST') return json(405, { error: protocolError('METHOD_NOT_ALLOWED', 'use POST') }, { allow: 'POST' });
      const caller = await authenticate(request);
      if (!('role' in caller)) return caller;
      if (caller.role !== 'admin') return errorResponse('AUTH_FORBIDDEN', 'only admins revoke tokens');
      const body = readJsonBody(request, RevokeRequest, 'give one of { tokenId }, { token }, { clinic, sub } or { clinic, all: true } (and an optional reason)');
      if (isResponse(body)) return body;
      const revocation = revocationFor(caller, body);
      if (!('kind' in revocation)) return revocation;
      await deps.authenticator.revocations.revoke(revocation);
      // Tokens issued from the next second on are not covered (a user or clinic revocation covers what was issued before it):
      // answering after that second has begun, so a token issued once this answer arrives is good.
      const nextSecond = Math.ceil(revocation.at / 1000) * 1000 + 1;
      if (revocation.kind !== 'token' && nextSecond > Date.now()) await new Promise((resolve) => setTimeout(resolve, nextSecond - Date.now()));
      return json(200, { revocation });
    }

    if (path === '/api/tokens/revocations') {
      if (method !== 'GET') return json(405, { error: protocolError('METHOD_NOT_ALLOWED', 'use GET') }, { allow: 'GET' });
      const caller = await authenticate(request);
      if (!('role' in caller)) return caller;
      if (caller.role !== 'admin') return errorResponse('AUTH_FORBIDDEN', 'only admins see revocations');
      const revocations = deps.authenticator.revocations.list().filter((r) => caller.clinic === '*' || r.clinic === caller.clinic);
      return json(200, { revocations });
    }

    if ((path === '/api/ops/status' || path === '/api/ops/workers') && method === 'GET') {
      const caller = await authenticate(request);
      if (!('role' in caller)) return caller;
      if (caller.role !== 'admin' && caller.role !== 'staff' && caller.role !== 'service') return errorResponse('AUTH_FORBIDDEN');
      // The AI workers and job queues serve every clinic: counts and worker ids only.
      if (path === '/api/ops/workers') return json(200, await opsWorkers(deps.redis));
      const clinicIds = caller.clinic === '*' ? deps.clinics.ids() : [caller.clinic];
      return json(200, await opsStatus(deps.redis, deps.clinics, clinicIds, deps.redisMode));
    }

    // Notifications as staff see them: ids and public facts, never an address or a text.
    const notifyRetry = /^\/api\/notify\/dead-letters\/([A-Za-z0-9_.-]{1,200})\/retry$/.exec(path);
    if (path === '/api/notify' || notifyRetry) {
      if (method !== (notifyRetry ? 'POST' : 'GET')) return json(405, { error: protocolError('METHOD_NOT_ALLOWED', `use ${notifyRetry ? 'POST' : 'GET'}`) });
      const caller = await authenticate(request);
      if (!('role' in caller)) return caller;
      if (caller.role !== 'admin' && caller.role !== 'staff') return errorResponse('AUTH_FORBIDDEN', 'only admins and staff see notifications');
      if (notifyRetry) {
        const scope = caller.clinic === '*' ? {} : { clinic: caller.clinic };
        const result = await deps.notifications.retryDeadLetter(notifyRetry[1]!, scope);
        return result.ok ? json(200, { ok: true, id: notifyRetry[1] }) : errorResponse(result.error.code, result.error.detail);
      }
      const clinic = request.query.get('clinic') ?? caller.clinic;
      if (!mayActFor(caller, clinic)) return errorResponse('AUTH_WRONG_CLINIC');
      if (clinic !== '*' && !deps.clinics.get(clinic)) return errorResponse('CLINIC_NOT_FOUND', clinic);
      const count = Number(request.query.get('count') ?? 20);
      if (!Number.isInteger(count) || count < 1 || count > 100) return errorResponse('INVALID_PAYLOAD', 'count: a whole number from 1 to 100');
      return json(200, await deps.notifications.overview(clinic === '*' ? null : clinic, { count }));
    }

    // A test notice from the manager's console, to the address given (the manager's own): audited without the address.
    const notifyTest = /^\/api\/clinics\/([A-Za-z0-9_-]{1,32})\/notify\/test$/.exec(path);
    if (notifyTest) {
      if (method !== 'POST') return json(405, { error: protocolError('METHOD_NOT_ALLOWED', 'use POST') }, { allow: 'POST' });
      const clinic = notifyTest[1]!;
      const caller = await authenticate(request);
      if (!('role' in caller)) return caller;
      if (caller.role !== 'admin') return errorResponse('AUTH_FORBIDDEN', 'only admins send test notifications');
      if (!mayActFor(caller, clinic)) return errorResponse('AUTH_WRONG_CLINIC');
      if (!deps.clinics.get(clinic)) return errorResponse('CLINIC_NOT_FOUND', clinic);
      const body = readJsonBody(request, NotifyTestRequest);
      if (isResponse(body)) return body;
      const sent = await deps.notifications.sendTest(clinic, body);
      if (!sent.ok) return errorResponse(sent.error.code, sent.error.detail);
      await appendAudit(deps.redis, clinic, { actor: caller.sub, role: caller.role, action: 'notify.test', subject: `${body.channel} ${sent.id}`, from: request.remoteAddress });
      const result: NotifyTestResult = { id: sent.id, channel: body.channel };
      return json(202, result);
    }

    // The clinic as any page of it may know it (names, timezone, departments, rooms): for a page that follows no queue.
    const clinicInfo = /^\/api\/clinics\/([A-Za-z0-9_-]{1,32})$/.exec(path);
    if (clinicInfo && method === 'GET') {
      const clinic = clinicInfo[1]!;
      const caller = await authenticate(request);
      if (!('role' in caller)) return caller;
      if (!mayActFor(caller, clinic)) return errorResponse('AUTH_WRONG_CLINIC');
      const config = deps.clinics.get(clinic);
      if (!config) return errorResponse('CLINIC_NOT_FOUND', clinic);
      return json(200, toPublicClinic(config));
    }

    const clinicRoute = /^\/api\/clinics\/([A-Za-z0-9_-]{1,32})\/(queue|audit|displays)$/.exec(path);
    if (clinicRoute && method === 'GET') {
      const [, clinic, what] = clinicRoute as unknown as [string, string, string];
      const caller = await authenticate(request);
      if (!('role' in caller)) return caller;
      if (!mayActFor(caller, clinic)) return errorResponse('AUTH_WRONG_CLINIC');
      if (what === 'audit') {
        if (caller.role !== 'admin') return errorResponse('AUTH_FORBIDDEN', 'only admins read the audit stream');
        const count = Number(request.query.get('count') ?? 100);
        if (!Number.isInteger(count) || count < 1 || count > 1000) return errorResponse('INVALID_PAYLOAD', 'count: a whole number from 1 to 1000');
        const filter = auditFilterOf(request.query);
        if (typeof filter === 'string') return errorResponse('INVALID_PAYLOAD', filter);
        const format = request.query.get('format') ?? 'json';
        if (format !== 'json' && format !== 'csv') return errorResponse('INVALID_PAYLOAD', 'format: json or csv');
        const result = await queryAudit(deps.redis, clinic, filter, count);
        // Reading the audit is itself audited (after the query, so the answer shows the stream as it was), before anything is returned.
        const described = Object.entries(filter).map(([key, value]) => `${key}=${value}`).join('&') || '*';
        await appendAudit(deps.redis, clinic, { actor: caller.sub, role: caller.role, action: format === 'csv' ? 'audit.export' : 'audit.read', subject: described, from: request.remoteAddress });
        if (format === 'csv') {
          return {
            status: 200,
            headers: { 'content-type': 'text/csv; charset=utf-8', 'cache-control': 'no-store', 'content-disposition': `attachment; filename="audit-${clinic}.csv"` },
            body: auditCsv(result.entries),
          };
        }
        return json(200, result);
      }
      if (!CLINICIAN_ROLES.includes(caller.role)) return errorResponse('AUTH_FORBIDDEN');
      if (!deps.clinics.get(clinic)) return errorResponse('CLINIC_NOT_FOUND', clinic);
      if (what === 'displays') return json(200, { displays: await listDisplays(deps.redis, clinic) });
      const result = await deps.queue.snapshot(clinic);
      return result.ok ? json(200, result.snapshot) : errorResponse(result.error.code);
    }

    for (const route of deps.domainRoutes ?? []) {
      const response = await route(request);
      if (response) return response;
    }

    if (method === 'GET' || method === 'HEAD') {
      const asset = deps.assets.get(path === '/' ? '/index' : path);
      if (asset) {
        return {
          status: 200,
          headers: {
            'content-type': asset.contentType,
            'cache-control': 'no-cache',
            'content-security-policy':
              "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; media-src 'self' data: blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
          },
          body: asset.body,
        };
      }
    }
    return json(404, { error: protocolError('NOT_FOUND', `${method} ${path}`) });
  };

  // Redis being down is the store being unavailable (retry later), not a bug of the hub.
  return async (request) => {
    try {
      return await handle(request);
    } catch (error) {
      if (isRedisUnavailable(error)) return errorResponse('STORE_UNAVAILABLE');
      throw error;
    }
  };
}
