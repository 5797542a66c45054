import { createAdapter } from '@socket.io/redis-adapter';
import { Server as SocketServer } from 'socket.io';
import { CHAT_NAMESPACE, NOTIFY_NAMESPACE, QUEUE_NAMESPACE } from '@clinic-hub/protocol';
import { NotificationService, registerNotifyHandlers } from './notify/index.js';
import { createReminderRoutes } from './notify/reminder-routes.js';
import { socketAuth } from './auth/socket-auth.js';
import { TokenIssuer } from './auth/tokens.js';
import { startChat } from './chat/index.js';
import { ClinicRegistry } from './clinics/clinic-registry.js';
import type { HubConfig } from './config.js';
import type { HubServer } from './http/http-types.js';
import { createRoutes } from './http/routes.js';
import { startNodeServer } from './http/server-node.js';
import { loadUws, startUwsServer } from './http/server-uws.js';
import { createLogger, type Logger } from './logger.js';
import { HubMetrics } from './metrics.js';
import { NodeRegistry } from './ops/node-registry.js';
import { registerQueueHandlers } from './queue/queue-handlers.js';
import { startQueueFanout } from './queue/queue-live.js';
import { QueueService } from './queue/queue-service.js';
import { catchUnawaitedFailures, connectRedis } from './redis/connect.js';
import { loadWebAssets } from './web/web-assets.js';

export interface RunningHub {
  port: number;
  url: string;
  server: 'uws' | 'node';
  nodeId: string;
  tokens: TokenIssuer;
  clinics: ClinicRegistry;
  logger: Logger;
  /** Disconnects every client, closes the server and the Redis connections. */
  close(): Promise<void>;
}

/** Engine.IO's own limit: past this the transport closes. Smaller payloads get PAYLOAD_TOO_LARGE from the guard. */
const TRANSPORT_MAX_BYTES = 1_048_576;

export async function startHub(config: HubConfig, options: { logger?: Logger } = {}): Promise<RunningHub> {
  const logger = options.logger ?? createLogger(config.logLevel, config.nodeId);
  const clinics = ClinicRegistry.fromDirectory(config.clinicsDir);
  const tokens = new TokenIssuer(config.tokenSecret);
  const metrics = new HubMetrics(config.nodeId);
  const startedAt = Date.now();

  const redis = connectRedis(config.redisUrl, `hub:${config.nodeId}:cmd`);
  const adapterPub = connectRedis(config.redisUrl, `hub:${config.nodeId}:adapter-pub`);
  const adapterSub = connectRedis(config.redisUrl, `hub:${config.nodeId}:adapter-sub`);
  const liveSub = connectRedis(config.redisUrl, `hub:${config.nodeId}:live`);
  const chatSub = connectRedis(config.redisUrl, `hub:${config.nodeId}:chat-live`);
  const connections = [redis, adapterPub, adapterSub, liveSub, chatSub];
  let redisDownSince: number | null = null;
  redis.on('error', (error: Error) => {
    if (redisDownSince === null) {
      redisDownSince = Date.now();
      logger.warn({ err: error.message }, 'Redis unreachable; reconnecting');
    }
  });
  redis.on('ready', () => {
    if (redisDownSince !== null) logger.info({ downMs: Date.now() - redisDownSince }, 'Redis reachable again');
    redisDownSince = null;
  });
  for (const connection of [adapterPub, adapterSub, liveSub, chatSub]) connection.on('error', () => undefined);
  const adapterFailed = (error: Error, command: string) => logger.debug({ err: error.message, command }, 'Socket.IO adapter command failed');
  catchUnawaitedFailures(adapterPub, ['publish'], adapterFailed);
  catchUnawaitedFailures(adapterSub, ['psubscribe', 'punsubscribe', 'subscribe', 'unsubscribe'], adapterFailed);

  const queue = new QueueService(redis, clinics);
  // A page that does not build must not keep the waiting room down: log it and serve the API.
  const assets = await loadWebAssets().catch((error: Error) => {
    logger.error({ err: error.message }, 'web pages failed to build; serving the API without them');
    return new Map();
  });

  const io = new SocketServer({
    adapter: createAdapter(adapterPub, adapterSub),
    maxHttpBufferSize: TRANSPORT_MAX_BYTES,
    transports: ['websocket', 'polling'],
    serveClient: false,
    pingInterval: 10_000,
    pingTimeout: 5_000,
  });
  const tokenTtlSeconds = (role: string) =>
    role === 'display' ? config.tokenTtlSeconds.display : role === 'patient' ? config.tokenTtlSeconds.patient : config.tokenTtlSeconds.default;

  let server: HubServer | null = null;
  let draining = false;
  const publicUrl = () => config.publicUrl ?? `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${server?.port ?? config.port}`;

  const notifications = new NotificationService({ config: config.notify, clinics, redis, logger });
  const notifyNsp = io.of(NOTIFY_NAMESPACE);
  notifyNsp.use(socketAuth(tokens, clinics));
  registerNotifyHandlers(notifyNsp);

  const queueNsp = io.of(QUEUE_NAMESPACE);
  queueNsp.use(socketAuth(tokens, clinics));
  registerQueueHandlers(queueNsp, {
    queue,
    tokens,
    redis,
    logger,
    metrics,
    maxPayloadBytes: config.maxPayloadBytes,
    tokenTtlSeconds,
    publicUrl,
    setTicketContact: (clinic, ticketId, contact) => notifications.setTicketContact(clinic, ticketId, contact),
  });
  await startQueueFanout(liveSub, queueNsp, { queue, clinicIds: clinics.ids(), metrics, logger });

  const chatNsp = io.of(CHAT_NAMESPACE);
  chatNsp.use(socketAuth(tokens, clinics));
  const chat = await startChat({
    nsp: chatNsp,
    redis,
    subscriber: chatSub,
    config: config.chat,
    nodeId: config.nodeId,
    clinics,
    tokens,
    findTicket: (clinic, ticketId) => queue.ticket(clinic, ticketId),
    logger,
    metrics,
    maxPayloadBytes: config.maxPayloadBytes,
    tokenTtlSeconds,
  });
  const nodeRegistry = new NodeRegistry(redis, queueNsp, { nodeId: config.nodeId, url: publicUrl, server: () => server?.kind ?? config.server }, logger);
  nodeRegistry.start();

  const routeHandler = createRoutes({
    nodeId: config.nodeId,
    serverKind: () => server?.kind ?? config.server,
    startedAt,
    redis,
    metrics,
    tokens,
    clinics,
    queue,
    notifications,
    assets,
    tokenTtlSeconds,
    ready: () => !draining && redisDownSince === null,
    domainRoutes: [chat.routes, createReminderRoutes({ tokens, notifications })],
  });
  const routes: typeof routeHandler = (request) =>
    routeHandler(request).catch((error: unknown) => {
      logger.error({ err: error, method: request.method, path: request.path }, 'HTTP route failed');
      throw error;
    });
  const listen = { host: config.host, port: config.port, maxBodyBytes: 64 * 1024, bodyLimit: chat.bodyLimit };

  if (config.server === 'uws') {
    const loaded = await loadUws();
    if ('uws' in loaded) server = await startUwsServer(loaded.uws, io, routes, listen);
    else logger.warn({ err: loaded.error.message }, 'uWebSockets.js cannot load on this platform; serving with Node HTTP + ws instead');
  }
  server ??= await startNodeServer(io, routes, listen);
  const running = server;
  logger.info({ port: running.port, server: running.kind, clinics: clinics.ids() }, 'hub listening');

  return {
    port: running.port,
    url: `http://127.0.0.1:${running.port}`,
    server: running.kind,
    nodeId: config.nodeId,
    tokens,
    clinics,
    logger,
    async close() {
      draining = true;
      await nodeRegistry.stop();
      io.disconnectSockets(true);
      await new Promise<void>((resolve) => io.close(() => resolve()));
      await running.close().catch(() => undefined);
      await chat.close();
      await notifications.close().catch(() => undefined);
      await Promise.all(connections.map((c) => c.quit().catch(() => c.disconnect())));
      logger.info('hub stopped');
    },
  };
}
