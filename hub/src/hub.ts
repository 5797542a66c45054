import { createAdapter, createShardedAdapter } from '@socket.io/redis-adapter';
import { Server as SocketServer, type Namespace } from 'socket.io';
import { CHAT_NAMESPACE, CONSULT_NAMESPACE, NOTIFY_NAMESPACE, QUEUE_NAMESPACE, TERMINAL_STATUSES, toPublicClinic, type NotifyContactInput } from '@clinic-hub/protocol';
import { NotificationService, registerNotifyHandlers, startNotifyLive } from './notify/index.js';
import { createReminderRoutes } from './notify/reminder-routes.js';
import { PatientPageStore } from './notify/patient-page-store.js';
import { LineLinkService } from './notify/line-link.js';
import { createPatientNoticeRoutes } from './notify/patient-notice-routes.js';
import { AppointmentService, createAppointmentRoutes } from './appointments/index.js';
import { SelfCheckinService, createSelfCheckinRoutes } from './self-checkin/index.js';
import { createRecordingRoutes } from './recordings/recording-routes.js';
import { RecordingPurges } from './recordings/recording-purges.js';
import { startAuth } from './auth/start-auth.js';
import { createSessionRoutes } from './auth/session-routes.js';
import { bearerToken } from './auth/authenticator.js';
import { ConnectError, socketAuth } from './auth/socket-auth.js';
import { TokenIssuer } from '@clinic-hub/platform/token-issuer';
import { startChat, upgradeChatLayout } from './chat/index.js';
import { startConsult } from './consult/index.js';
import { ClinicRegistry } from './clinics/clinic-registry.js';
import type { HubConfig } from './config.js';
import type { HubServer } from './http/http-types.js';
import { securityHeadersFor } from './http/http-types.js';
import { originAllowed } from './http/origin-policy.js';
import { withCors } from './http/cors.js';
import { apiRateLimit } from './http/http-rate-limit.js';
import { createRoutes, errorResponse } from './http/routes.js';
import { startNodeServer } from './http/server-node.js';
import { loadUws, startUwsServer } from './http/server-uws.js';
import type { Logger } from '@clinic-hub/platform/logging';
import { createHubLogger } from './hub-logger.js';
import { HubMetrics } from './metrics.js';
import { NodeRegistry } from './ops/node-registry.js';
import { QueueService, clinicRoom, startQueue, upgradeQueueLayout, type RunningQueue } from './queue/index.js';
import { ClinicSettings } from './settings/clinic-settings.js';
import { createSettingsRoutes } from './settings/settings-routes.js';
import { WebhookDispatcher } from './webhooks/webhook-dispatcher.js';
import { createWebhookRoutes } from './webhooks/webhook-routes.js';
import { WebhookStore } from './webhooks/webhook-store.js';
import { ReplicaAck, catchUnawaitedFailures, connectRedisClient, endConnection, isRedisUnavailable, pingWithin, readReplication, withinDeadline } from '@clinic-hub/platform/redis';

import { DrainState } from './socket/drain.js';
import type { NodeGuards } from './socket/event-guard.js';
import { EventRateLimiter } from './socket/rate-limiter.js';
import { continueTrace, runInTrace, traceLogFields } from '@clinic-hub/platform/tracing';
import { loadWebAssets } from './web/web-assets.js';


export interface RunningHub {
  port: number;
  url: string;
  server: 'uws' | 'node';
  nodeId: string;
  tokens: TokenIssuer;
  clinics: ClinicRegistry;
  logger: Logger;
  /**
   * Leaves gracefully (SIGTERM): not ready at once, no new connections,
   * `hub:draining` to every client, then after HUB_DRAIN_GRACE_MS new actions
   * are refused, the ones in flight are acknowledged (for at most
   * HUB_DRAIN_TIMEOUT_MS), the connections are closed so that clients
   * reconnect elsewhere, and the node closes.
   */
  drain(): Promise<void>;
  /** Disconnects every client at once, closes the server and the Redis connections. */
  close(): Promise<void>;
}

/** Engine.IO's own limit: past this the transport closes. Smaller payloads get PAYLOAD_TOO_LARGE from the guard. */
const TRANSPORT_MAX_BYTES = 1_048_576;
/** After closing the connections, how long a drain waits for the transports to report closed. */
const TRANSPORTS_CLOSE_MS = 2000;
/** How long /readyz and /healthz wait for Redis to answer PING. */
const PROBE_PING_MS = 750;
/** How long an Engine.IO connection may stay without joining a namespace (Socket.IO's default is 45 s). */
const CONNECT_TIMEOUT_MS = 10_000;
/** How many refused origins a node logs (once each): enough to see a misconfiguration, not a flood. */
const REFUSED_ORIGINS_LOGGED = 100;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function startHub(config: HubConfig, options: { logger?: Logger } = {}): Promise<RunningHub> {
  const logger = options.logger ?? createHubLogger(config.logLevel, config.nodeId);
  const clinics = ClinicRegistry.fromDirectory(config.clinicsDir);
  const tokens = new TokenIssuer(config.tokenSecret);
  const metrics = new HubMetrics(config.nodeId);
  const startedAt = Date.now();

  // Commands that Redis does not answer in time fail (STORE_UNAVAILABLE) instead of waiting for as long as Redis is stalled.
  const redis = connectRedisClient(config.redis, `hub:${config.nodeId}:cmd`, { commandTimeout: config.timeouts.redisMs });
  const adapterPub = connectRedisClient(config.redis, `hub:${config.nodeId}:adapter-pub`);
  const adapterSub = connectRedisClient(config.redis, `hub:${config.nodeId}:adapter-sub`, { shardedSubscriber: true });
  const liveSub = connectRedisClient(config.redis, `hub:${config.nodeId}:live`, { shardedSubscriber: true });
  const chatSub = connectRedisClient(config.redis, `hub:${config.nodeId}:chat-live`, { shardedSubscriber: true });
  const consultSub = connectRedisClient(config.redis, `hub:${config.nodeId}:consult-live`, { shardedSubscriber: true });
  const authSub = connectRedisClient(config.redis, `hub:${config.nodeId}:auth`);
  const settingsSub = connectRedisClient(config.redis, `hub:${config.nodeId}:settings`);
  // Queue changes wait for replicas on a connection of their own: a WAIT holds up only the writes behind it.
  const queueWrites = config.redisAck.replicas > 0 ? connectRedisClient(config.redis, `hub:${config.nodeId}:queue-writes`, { commandTimeout: config.timeouts.redisMs }) : null;
  // Chat changes likewise, on a connection of their own: a queue change never waits behind a message's WAIT.
  const chatWrites = config.redisAck.replicas > 0 ? connectRedisClient(config.redis, `hub:${config.nodeId}:chat-writes`, { commandTimeout: config.timeouts.redisMs }) : null;
  const connections = [redis, adapterPub, adapterSub, liveSub, chatSub, consultSub, authSub, settingsSub, ...(queueWrites ? [queueWrites] : []), ...(chatWrites ? [chatWrites] : [])];
  let redisDownSince: number | null = null;
  redis.on('error', (error: Error) => {
    if (redisDownSince === null) {
      redisDownSince = Date.now();
      logger.warn({ err: error.message }, 'Redis unreachable; reconnecting');
    }
  });
  redis.on('ready', () => {
    const stream = (redis as unknown as { stream?: { remoteAddress?: string; remotePort?: number } }).stream;
    const address = stream?.remoteAddress ? `${stream.remoteAddress}:${stream.remotePort}` : undefined;
    if (redisDownSince !== null) logger.info({ downMs: Date.now() - redisDownSince, redis: address }, 'Redis reachable again');
    redisDownSince = null;
  });
  for (const connection of connections.slice(1)) connection.on('error', () => undefined);
  for (const connection of connections) {
    // ioredis never reconnects a connection that reached "end": outside close(), that node has lost Redis for good.
    connection.on('end', () => {
      if (closed === null) logger.error({ redisMode: config.redis.mode }, 'a Redis connection ended and will not reconnect; restart this node');
    });
  }
  const adapterFailed = (error: Error, command: string) => logger.debug({ err: error.message, command }, 'Socket.IO adapter command failed');
  catchUnawaitedFailures(adapterPub, ['publish', 'spublish'], adapterFailed);
  catchUnawaitedFailures(adapterSub, ['psubscribe', 'punsubscribe', 'subscribe', 'unsubscribe', 'ssubscribe', 'sunsubscribe'], adapterFailed);

  // Before this node serves any clinic: its queue data in this version's layout (README, "Upgrading").
  await upgradeQueueLayout(redis, clinics.ids(), logger);
  await upgradeChatLayout(redis, clinics.ids(), logger);

  // The clinic files seed the settings in Redis; from here on every node applies what Redis holds (and each change, live).
  let queueBroadcast: RunningQueue['broadcast'] | null = null;
  const settings = new ClinicSettings({
    redis,
    subscriber: settingsSub,
    clinics,
    logger,
    liveTickets: async (clinic) => {
      const snapshot = await queue.snapshot(clinic);
      if (!snapshot.ok) throw new Error(`cannot read the live tickets: ${snapshot.error.code}`);
      return snapshot.snapshot.tickets;
    },
    onApplied: (clinic) => queueBroadcast?.emit(clinicRoom(clinic.id), 'queue:clinic', toPublicClinic(clinic)),
  });
  await settings.start();
  const observeAck = ({ confirmed, seconds }: { confirmed: boolean; seconds: number }) =>
    metrics.replicaAck.observe({ outcome: confirmed ? 'confirmed' : 'timeout' }, seconds);
  const ack = queueWrites ? new ReplicaAck(queueWrites, config.redisAck, observeAck) : undefined;
  const chatAck = chatWrites ? new ReplicaAck(chatWrites, config.redisAck, observeAck) : undefined;
  const queue = new QueueService(redis, clinics, { ack });
  const redisReplication = () => withinDeadline(readReplication(redis), PROBE_PING_MS, () => undefined).catch(() => null);
  metrics.watchRedis(redisReplication);
  const recordingPurges = new RecordingPurges(config.redis, `hub:${config.nodeId}`, { policy: config.redisAck, observe: observeAck });
  const webhookStore = new WebhookStore(redis);
  const webhooks = new WebhookDispatcher({
    redis,
    redisTarget: config.redis,
    nodeId: config.nodeId,
    store: webhookStore,
    config: config.webhooks,
    ack: config.redisAck,
    patientInfo: (clinic, ticketId) => queue.patientInfo(clinic, ticketId),
    logger,
  });
  // A kiosk is a device at the entrance like a display: its tokens and sessions live as long.
  const byRole = <T>(values: { display: T; patient: T; default: T }) => (role: string) =>
    role === 'display' || role === 'kiosk' ? values.display : role === 'patient' ? values.patient : values.default;
  const tokenTtlSeconds = byRole(config.tokenTtlSeconds);
  const { revocations, authenticator, sessions } = await startAuth({
    redis,
    subscriber: authSub,
    tokens,
    clinics,
    patientAccessUntil: (clinic, ticketId) => queue.patientAccessUntil(clinic, ticketId),
    ttlSeconds: tokenTtlSeconds,
    maxSessionSeconds: byRole(config.sessionMaxSeconds),
    metrics,
    logger,
  });
  // A page that does not build must not keep the waiting room down: log it and serve the API.
  const assets = await loadWebAssets().catch((error: Error) => {
    logger.error({ err: error.message }, 'web pages failed to build; serving the API without them');
    return new Map();
  });

  const drain = new DrainState();
  const guards: NodeGuards = { limiter: new EventRateLimiter(config.rateLimits), drain, actionTimeoutMs: config.timeouts.actionMs, sessions };
  const refusedOrigins = new Set<string>();
  const io = new SocketServer({
    // On a Redis Cluster, sharded pub/sub (SPUBLISH to the shard that owns the channel, not to every node); the rooms' channels
    // spread over the shards. On one Redis the classic adapter, as before.
    adapter: config.redis.mode === 'cluster' ? createShardedAdapter(adapterPub, adapterSub, { subscriptionMode: 'dynamic' }) : createAdapter(adapterPub, adapterSub),
    maxHttpBufferSize: TRANSPORT_MAX_BYTES,
    transports: ['websocket', 'polling'],
    serveClient: false,
    pingInterval: 10_000,
    pingTimeout: 5_000,
    // A connection that joins no namespace (it was refused, or never asked) is closed after this.
    connectTimeout: CONNECT_TIMEOUT_MS,
    // New sessions only (a handshake, or a WebSocket opened without one); Engine.IO answers a refusal with 403.
    allowRequest: (req, callback) => {
      if (!drain.acceptsConnections) return callback('HUB_DRAINING', false);
      const origin = req.headers.origin;
      if (!originAllowed(config, origin, req.headers.host)) {
        if (origin && refusedOrigins.size < REFUSED_ORIGINS_LOGGED && !refusedOrigins.has(origin)) {
          refusedOrigins.add(origin);
          logger.warn({ origin }, 'socket refused: origin not allowed (HUB_ALLOWED_ORIGINS)');
        }
        return callback('ORIGIN_NOT_ALLOWED', false);
      }
      callback(null, true);
    },
    // Long-polling from the listed origins reads its responses across origins; WebSocket needs no CORS.
    ...(config.allowedOrigins === '*' || config.allowedOrigins.length > 0
      ? { cors: { origin: config.allowedOrigins === '*' ? true : config.allowedOrigins, methods: ['GET', 'POST'] } }
      : {}),
  });
  let server: HubServer | null = null;
  let redisAnswered = true;
  // Answered within the load balancer's check interval (1 s): a deliberate 503, not a check that timed out.
  const probeRedis = async () => (redisAnswered = await pingWithin(redis, PROBE_PING_MS));
  const ready = () => drain.phase === 'serving' && redisDownSince === null && redisAnswered;
  metrics.watchNode({ ready, actionsInFlight: () => drain.inFlight, clients: () => sessions.countByNamespace() });
  const publicUrl = () => config.publicUrl ?? `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${server?.port ?? config.port}`;

  const notifications = new NotificationService({ config: config.notify, clinics, redis, logger });
  // The root namespace serves nothing: without this, any client (with no token at all) could sit on it.
  io.of('/').use((_socket, next) => next(new ConnectError('NAMESPACE_NOT_FOUND')));
  const [notifyNsp, queueNsp, chatNsp, consultNsp] = [NOTIFY_NAMESPACE, QUEUE_NAMESPACE, CHAT_NAMESPACE, CONSULT_NAMESPACE].map((name) => {
    const nsp = io.of(name);
    // Every namespace: the token checked at connect, and the socket's session followed until it ends.
    nsp.use(socketAuth(authenticator, config.trustedProxies));
    nsp.on('connection', (socket) => sessions.attach(socket));
    return nsp;
  }) as [Namespace, Namespace, Namespace, Namespace];
  const patientPages = new PatientPageStore(redis);
  const stopNotifyHandlers = registerNotifyHandlers(notifyNsp, { logger, metrics, guards, maxPayloadBytes: config.maxPayloadBytes, pages: patientPages });
  // The clinics' notify channels ride on the queue's live subscriber: both are sharded, per clinic, followed for good.
  await startNotifyLive(liveSub, notifyNsp, { clinicIds: clinics.ids(), pages: patientPages, logger });

  const patientCheckin = {
    queue,
    tokens,
    tokenTtlSeconds,
    publicUrl,
    setTicketContact: (clinic: string, ticketId: string, contact: NotifyContactInput) => notifications.setTicketContact(clinic, ticketId, contact),
  };
  const appointments = new AppointmentService({ redis, clinics, notifications, publicUrl });
  const { lineLink: lineLinkConfig, channels: notifyChannels } = config.notify;
  const lineLink =
    lineLinkConfig && notifyChannels.line
      ? new LineLinkService(
          { redis, clinics, notifications, findTicket: (clinic, ticket) => queue.ticket(clinic, ticket), logger },
          { ...lineLinkConfig, channelAccessToken: notifyChannels.line.channelAccessToken, apiBaseUrl: notifyChannels.line.baseUrl },
        )
      : null;
  const selfCheckin = new SelfCheckinService({
    ...patientCheckin,
    redis,
    clinics,
    appointments,
    limits: config.selfCheckinLimits,
    ...(lineLink ? { lineLink: (clinic: string, ticket: string, language: string) => lineLink.create(clinic, ticket, language === 'ja' ? 'ja' : 'en', tokenTtlSeconds('patient')) } : {}),
  });

  const runningQueue = await startQueue({
    ...patientCheckin,
    nsp: queueNsp,
    redis,
    subscriber: liveSub,
    clinicIds: clinics.ids(),
    coalesceMs: config.fanoutCoalesceMs,
    selfCheckin,
    logger,
    metrics,
    guards,
    maxPayloadBytes: config.maxPayloadBytes,
    // A patient's token ends with their ticket, after the clinic's grace period.
    onEvent: (clinic, event) => {
      if (event.ticket.endedAt !== null && TERMINAL_STATUSES.includes(event.ticket.status)) {
        sessions.ticketEnded(clinic, event.ticket.id, queue.accessAfterEnd(clinic, event.ticket.endedAt));
      }
      // Every node hears every event: the event id (clinic and seq) makes the deliveries one per endpoint.
      const patientTicket = event.type === 'ticket.issued' ? event.ticket.id : undefined;
      webhooks.publishRetrying(clinic, event.type, `${clinic}-q${event.seq}`, event.at, { seq: event.seq, ticket: event.ticket }, patientTicket).catch((error: Error) =>
        logger.warn({ clinic, seq: event.seq, err: error.message }, 'cannot enqueue webhook deliveries'),
      );
    },
  });

  queueBroadcast = runningQueue.broadcast;

  /** Chat replies and admissions reach a patient whose page is closed (notify domain). */
  const noticeForTicket = (kind: 'chat_reply' | 'consult_ready') => (clinic: string, ticketId: string, key: string) => {
    void (async () => {
      const ticket = await queue.ticket(clinic, ticketId);
      if (ticket) await notifications.noticeForTicket(clinic, ticket, kind, key);
    })().catch((error: unknown) => logger.warn({ clinic, kind, err: error instanceof Error ? error.message : String(error) }, 'patient notice not enqueued'));
  };

  const chat = await startChat({
    onClinicianReply: noticeForTicket('chat_reply'),
    nsp: chatNsp,
    redis,
    subscriber: chatSub,
    ack: chatAck,
    config: config.chat,
    nodeId: config.nodeId,
    clinics,
    authenticator,
    findTicket: (clinic, ticketId) => queue.ticket(clinic, ticketId),
    logger,
    metrics,
    guards,
    maxPayloadBytes: config.maxPayloadBytes,
  });
  const consult = await startConsult({
    onAdmitted: noticeForTicket('consult_ready'),
    // Told once, by the node that made the change; the event id makes a second hand-over a no-op all the same.
    onLifecycle: (clinic, change) => {
      const { consultation } = change;
      const started = change.type === 'consult.started';
      const data = { consult: consultation, ...(started ? {} : { reason: change.reason }) };
      webhooks
        .publishRetrying(clinic, change.type, `${clinic}-c-${consultation.id}-${started ? 'started' : 'ended'}`, started ? consultation.createdAt : (consultation.endedAt ?? Date.now()), data, consultation.ticket)
        .catch((error: Error) => logger.warn({ clinic, consult: consultation.id, err: error.message }, 'cannot enqueue webhook deliveries'));
    },
    nsp: consultNsp,
    redis,
    redisTarget: config.redis,
    aiSessionAck: { policy: config.redisAck, observe: observeAck },
    ...(ack && { ack }),
    subscriber: consultSub,
    config: config.consult,
    nodeId: config.nodeId,
    clinics,
    authenticator,
    queue,
    publicUrl,
    logger,
    metrics,
    guards,
    maxPayloadBytes: config.maxPayloadBytes,
    // The clinic's retention.recordingDays: what the media-server's purge applies to its recordings (each consultation's meta hash carries it).
    recordingRetentionDays: (clinic) => clinics.get(clinic)?.retention.recordingDays ?? config.recordings.retentionMs / 86_400_000,
  });
  const nodeRegistry = new NodeRegistry(
    redis,
    queueNsp,
    { nodeId: config.nodeId, url: publicUrl, server: () => server?.kind ?? config.server, clients: () => sessions.countByRole(), clinicIds: clinics.ids() },
    logger,
  );
  nodeRegistry.start();

  const routeHandler = createRoutes({
    nodeId: config.nodeId,
    serverKind: () => server?.kind ?? config.server,
    startedAt,
    redis,
    metrics,
    tokens,
    authenticator,
    clinics,
    queue,
    notifications,
    assets,
    tokenTtlSeconds,
    ready,
    probeRedis,
    redisMode: config.redis.mode,
    redisReplication,
    domainRoutes: [
      chat.routes,
      consult.routes,
      createReminderRoutes({ authenticator, notifications, appointments }),
      createAppointmentRoutes({ authenticator, appointments }),
      createSelfCheckinRoutes({ authenticator, selfCheckin, publicUrl }),
      createPatientNoticeRoutes({
        authenticator,
        redis,
        clinics,
        notifications,
        pages: patientPages,
        webPush: config.notify.webPush,
        line: lineLink,
        linkSeconds: tokenTtlSeconds('patient'),
      }),
      createRecordingRoutes({ authenticator, clinics, redis, config: config.recordings, purges: recordingPurges, logger }),
      createSettingsRoutes({ authenticator, settings }),
      createWebhookRoutes({ authenticator, clinics, store: webhookStore, redis }),
      createSessionRoutes({ authenticator, clinics, namespaces: [queueNsp, chatNsp, consultNsp, notifyNsp] }),
    ],
  });
  // Each request continues the caller's trace (a `traceparent` header) or starts one; jobs it enqueues carry it.
  // API requests are rate-limited as socket events are (inside CORS, so that a page on an allowed origin reads the 429).
  const rateLimited = apiRateLimit({ users: guards.limiter, address: config.rateLimits.address, tokens });
  const corsRoutes = withCors(async (request) => {
    const refused = rateLimited(request);
    if (!refused) return routeHandler(request);
    metrics.errorsTotal.inc({ code: 'RATE_LIMITED' });
    return refused;
  }, config);
  const routes: typeof routeHandler = (received) => {
    const request = { ...received, remoteAddress: config.trustedProxies.clientAddress(received.remoteAddress, received.headers['x-forwarded-for']) };
    const trace = continueTrace(request.headers.traceparent);
    const late = (outcome: { ok: boolean }) =>
      logger.warn({ method: request.method, path: request.path, outcome: outcome.ok ? 'done' : 'failed', ...traceLogFields(trace) }, 'request finished after its deadline (answered STORE_UNAVAILABLE)');
    return withinDeadline(runInTrace(trace, () => corsRoutes(request)), config.timeouts.actionMs, late).catch((error: unknown) => {
      if (isRedisUnavailable(error)) return errorResponse('STORE_UNAVAILABLE');
      logger.error({ err: error, method: request.method, path: request.path, ...traceLogFields(trace) }, 'HTTP route failed');
      throw error;
    });
  };
  const listen = {
    host: config.host,
    port: config.port,
    maxBodyBytes: 64 * 1024,
    bodyLimit: chat.bodyLimit,
    // An upload's body (megabytes) is read only for a caller whose token holds.
    preflight: (method: string, path: string, headers: Record<string, string>) => {
      if (!chat.bodyLimit(method, path)) return undefined;
      const refused = authenticator.refusesAtOnce(bearerToken(headers));
      return refused ? errorResponse(refused.code, refused.detail) : undefined;
    },
    securityHeaders: securityHeadersFor(config.publicUrl),
  };

  if (config.server === 'uws') {
    const loaded = await loadUws();
    if ('uws' in loaded) server = await startUwsServer(loaded.uws, io, routes, listen);
    else logger.warn({ err: loaded.error.message }, 'uWebSockets.js cannot load on this platform; serving with Node HTTP + ws instead');
  }
  server ??= await startNodeServer(io, routes, listen);
  const running = server;
  if (running.publish) runningQueue.broadcast.useTopics(running.publish);
  logger.info({ port: running.port, server: running.kind, clinics: clinics.ids() }, 'hub listening');

  const engine = io.engine as unknown as { clientsCount: number; clients: Record<string, { close(): void }> };
  /** Waits up to `ms`, less if every client has gone. */
  const whileClientsStay = async (ms: number) => {
    const until = Date.now() + ms;
    while (engine.clientsCount > 0 && Date.now() < until) await sleep(Math.min(100, until - Date.now()));
  };

  let closed: Promise<void> | null = null;
  /** The part of closing under way: named in the error when closing outlasts its deadline (below). */
  let closing = 'start';
  const closeSteps = async () => {
    drain.enter('closing');
    revocations.stop();
    settings.stop();
    closing = 'media node registry';
    await nodeRegistry.stop();
    closing = 'sockets';
    io.disconnectSockets(true);
    await new Promise<void>((resolve) => io.close(() => resolve()));
    await running.close().catch(() => undefined);
    closing = 'chat';
    await chat.close();
    closing = 'consultations';
    await consult.close();
    stopNotifyHandlers();
    closing = 'notifications';
    await notifications.close().catch(() => undefined);
    closing = 'webhooks';
    await webhooks.close();
    closing = 'recording purges';
    await recordingPurges.close();
    closing = 'Redis connections';
    await Promise.all(connections.map(endConnection));
    logger.info('hub stopped');
  };
  // A stop must end the process: a part that waits on Redis for good (a connection to a cluster node that died
  // keeps what is sent to it) is given up, and the log says which part it was. The deadline leaves a webhook
  // delivery in flight its whole timeout, so that a stop does not make its receiver get it twice.
  const closeDeadlineMs = config.webhooks.timeoutMs + 1000;
  const close = () =>
    (closed ??= withinDeadline(closeSteps(), closeDeadlineMs, () => undefined).catch((error: unknown) => {
      logger.error({ err: error, step: closing }, `hub closing did not finish within ${closeDeadlineMs} ms (waiting on: ${closing}); stopping anyway`);
    }));

  let drained: Promise<void> | null = null;
  const drainNode = () =>
    (drained ??= (async () => {
      drain.enter('draining');
      const graceMs = engine.clientsCount > 0 ? config.drain.graceMs : 0;
      logger.info({ clients: engine.clientsCount, graceMs, timeoutMs: config.drain.timeoutMs }, 'draining: not ready, no new connections');
      // This node's sockets only: an emit through the adapter would reach every node's clients.
      for (const nsp of [queueNsp, chatNsp, consultNsp]) nsp.local.emit('hub:draining', { node: config.nodeId, closesInMs: graceMs });
      await whileClientsStay(graceMs);

      drain.enter('closing');
      logger.info({ inFlight: drain.inFlight }, 'draining: refusing new actions (HUB_DRAINING), waiting for the ones in flight');
      const settled = await drain.settled(config.drain.timeoutMs);
      if (settled) logger.info('draining: every action in flight is acknowledged');
      else logger.warn({ inFlight: drain.inFlight }, 'draining: HUB_DRAIN_TIMEOUT_MS passed with actions still in flight');
      // Closing the transports without a Socket.IO disconnect packet: clients see "transport close" and reconnect by themselves.
      const moved = engine.clientsCount;
      for (const client of Object.values(engine.clients)) client.close();
      await whileClientsStay(TRANSPORTS_CLOSE_MS);
      logger.info({ clients: moved }, 'draining: connections closed; clients reconnect to other nodes');
      await close();
    })());

  return {
    port: running.port,
    url: `http://127.0.0.1:${running.port}`,
    server: running.kind,
    nodeId: config.nodeId,
    tokens,
    clinics,
    logger,
    drain: drainNode,
    close,
  };
}
