import { randomUUID } from 'node:crypto';
import { createLogger, type Logger } from '@clinic-hub/platform/logging';
import { consultKeys } from '@clinic-hub/protocol';
import { RoomTokenVerifier } from '@clinic-hub/platform/tokens';
import { connectRedisClient, endConnection } from '@clinic-hub/platform/redis';
import { continueTrace } from '@clinic-hub/platform/tracing';
import type { MediaConfig } from './config.js';
import type { MediaEngine, Recorder } from './engine/engine-types.js';
import { createMediaEngine } from './engine/create-engine.js';
import { MediasoupEngine } from './engine/mediasoup-engine.js';
import { MediaEvents } from './media-events.js';
import { MediaMetrics } from './metrics.js';
import { MediaNodeRegistry } from './registry/node-registry.js';
import { ConsultControl } from './room/consult-control.js';
import { RoomPresence } from './room/room-presence.js';
import { RoomRegistry } from './room/room-registry.js';
import type { Room } from './room/room.js';
import { SessionRecord } from './room/session-record.js';
import { startHttpServer } from './signal/http-server.js';
import { SignalConnection } from './signal/signal-connection.js';
import { SignalError } from './signal/signal-error.js';
import { iceServersFor } from './signal/turn-credentials.js';

export interface MediaServerOptions {
  /** Consent-gated recording (media-server/src/recording); without one, `recording` requests get RECORDING_KEY_MISSING. */
  recorder?: Recorder | null;
  logger?: Logger;
}

export interface RunningMediaServer {
  nodeId: string;
  /** What clients open (`<url>/signal`) and what the node registry announces. */
  url: string;
  port: number;
  logger: Logger;
  engine: MediaEngine;
  rooms: RoomRegistry;
  /** Tracks published, participants joining and leaving, rooms closing: for the audio tap. */
  events: MediaEvents;
  metrics: MediaMetrics;
  /** SIGTERM: take no new rooms, let the rooms here finish (up to the grace), then close them with `closed: draining` and stop. */
  drain(): Promise<void>;
  /** Closes every room (`closed: draining`) and stops now. */
  close(): Promise<void>;
}

export function createMediaLogger(level: string, nodeId: string): Logger {
  // Names travel in room tokens and participant info; neither belongs in logs.
  return createLogger(level, nodeId, { redact: ['token', '*.token', 'name', '*.name'] });
}

export async function startMediaServer(config: MediaConfig, options: MediaServerOptions = {}): Promise<RunningMediaServer> {
  const logger = options.logger ?? createMediaLogger(config.logLevel, config.nodeId);
  const redis = connectRedisClient(config.redis, `media:${config.nodeId}`);
  redis.on('error', (error) => logger.debug({ err: error }, 'redis connection error'));
  const subscriber = connectRedisClient(config.redis, `media:${config.nodeId}:control`, { shardedSubscriber: true });
  subscriber.on('error', (error) => logger.debug({ err: error }, 'redis subscriber error'));

  const engine = await createMediaEngine(config, logger);
  const events = new MediaEvents((error, event) => logger.error({ err: error, event }, 'a media event listener failed'));
  const rooms = new RoomRegistry({
    engine,
    recorder: options.recorder ?? null,
    record: new SessionRecord(redis, config.nodeId),
    presence: new RoomPresence(redis),
    events,
    logger,
    answerTimeoutMs: config.answerTimeoutMs,
    resumeGraceMs: config.resumeGraceMs,
    iceServersFor: (participantId) => iceServersFor(participantId, config.turn),
  });
  engine.onRoomReset((reset) => {
    const room = rooms.get(reset.clinic, reset.roomId);
    if (!room) return;
    if (!reset.moved) {
      room.mediaReset(reset, null);
      return;
    }
    engine.openRoom(reset.clinic, reset.roomId).then(
      (info) => room.mediaReset(reset, info),
      () => room.mediaReset({ ...reset, moved: false }, null),
    );
  });
  // The hub ends consultations by publishing on the clinic's control channel.
  const control = new ConsultControl(
    subscriber,
    (clinic, message) => {
      const room = rooms.get(clinic, message.consult);
      // In the trace of the hub action that ended it (a new one if it came without).
      if (room) room.close('ended', continueTrace(message.traceparent));
    },
    logger,
  );
  let draining = false;
  const metrics = new MediaMetrics(config.nodeId, engine, () => rooms.counts(), () => draining);
  const tokens = new RoomTokenVerifier(config.tokenSecret);

  async function admit(claims: { clinic: string; consult: string; sub: string }): Promise<Room> {
    const existing = rooms.get(claims.clinic, claims.consult);
    if (!existing && draining) throw new SignalError('MEDIA_NODE_UNAVAILABLE', 'this node is draining');
    let meta: (string | null)[];
    try {
      // Followed before the status is read: an end published after the read is heard (ConsultControl).
      await withinMs(control.follow(claims.clinic), config.storeTimeoutMs);
      meta = await withinMs(redis.hmget(consultKeys(claims.clinic, claims.consult).meta, 'status', 'node', 'rec'), config.storeTimeoutMs);
    } catch (error) {
      // A consultation that may have ended admits nobody: a token outlives the consultation it was issued for.
      logger.warn({ err: error instanceof Error ? error.message : String(error), consult: claims.consult }, 'consultation could not be checked in Redis; join refused');
      throw new SignalError('STORE_UNAVAILABLE', 'could not check that the consultation is still open; join again in a moment');
    }
    const [status, node, rec] = meta;
    if (status === 'ended') throw new SignalError('CONSULT_ENDED');
    if (node && node !== config.nodeId) throw new SignalError('MEDIA_WRONG_ROOM', `the consultation is on node ${node}`);
    let media;
    try {
      media = await engine.openRoom(claims.clinic, claims.consult);
    } catch (error) {
      logger.error({ err: error, consult: claims.consult }, 'room media could not be set up');
      throw new SignalError('MEDIA_NODE_UNAVAILABLE', 'the media engine could not open the room; join again in a moment');
    }
    const room = rooms.get(claims.clinic, claims.consult) ?? rooms.getOrCreate(claims.clinic, claims.consult);
    room.setMedia(media);
    // The clinic's recording rule, from its admission ("0": not allowed); a room no hub admitted has none.
    room.setRecordingAllowed(rec !== '0');
    if (!room.canAdmit(claims.sub)) throw new SignalError('MEDIA_ROOM_FULL');
    // Ended between the status read and here: the message found no room to close.
    if (control.hasEnded(claims.clinic, claims.consult)) {
      room.close('ended', continueTrace(undefined));
      throw new SignalError('CONSULT_ENDED');
    }
    return room;
  }

  const connections = new Set<SignalConnection>();
  const http = await startHttpServer(
    {
      async get(path) {
        const redisUp = redis.status === 'ready';
        const counts = rooms.counts();
        if (path === '/healthz') {
          return {
            status: redisUp ? 200 : 503,
            contentType: 'application/json; charset=utf-8',
            body: JSON.stringify({ status: redisUp ? 'ok' : 'degraded', node: config.nodeId, engine: engine.name, draining, redis: redisUp ? 'up' : 'down', ...counts }),
          };
        }
        if (path === '/readyz') {
          const ready = redisUp && !draining;
          return { status: ready ? 200 : 503, contentType: 'application/json; charset=utf-8', body: JSON.stringify({ ready, draining, redis: redisUp ? 'up' : 'down' }) };
        }
        if (path === '/debug/media' && config.debugEndpoint && engine instanceof MediasoupEngine) {
          return { status: 200, contentType: 'application/json; charset=utf-8', body: JSON.stringify(await engine.describe()) };
        }
        if (path === '/metrics') return { status: 200, contentType: metrics.registry.contentType, body: await metrics.registry.metrics() };
        return null;
      },
      connection(ws) {
        const connection = new SignalConnection(randomUUID().slice(0, 8), ws, {
          tokens,
          logger,
          joinTimeoutMs: config.joinTimeoutMs,
          rate: config.signalRate,
          admit,
          onError: (code) => metrics.signalErrors.inc({ code }),
          onJoined: () => metrics.joins.inc(),
        });
        connections.add(connection);
        ws.once('close', () => connections.delete(connection));
      },
    },
    { port: config.port, host: config.host },
  );
  const url = config.publicUrl ?? `http://${config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host}:${http.port}`;

  // Two missed pongs in a row and the connection is gone (a page whose network dropped): its participant leaves
  // (on mediasoup, unless its client resumes within MEDIA_RESUME_GRACE_MS: Room.connectionLost).
  const keepAlive = setInterval(() => {
    for (const connection of connections) {
      if (!connection.alive) {
        connection.terminate();
        continue;
      }
      connection.alive = false;
    }
    for (const ws of http.wss.clients) ws.ping();
  }, config.pingIntervalMs);

  const registry = new MediaNodeRegistry(redis, { nodeId: config.nodeId, url }, () => ({ ...rooms.counts(), draining }), logger);
  await registry.start().catch((error: unknown) => logger.warn({ err: error }, 'media node not registered yet (Redis down?); retrying with the heartbeat'));

  logger.info({ url, port: http.port, engine: engine.name, udp: config.udpPortRange, recorder: options.recorder ? 'on' : 'off' }, 'media-server listening');

  let closing: Promise<void> | null = null;
  const close = () => {
    closing ??= (async () => {
      draining = true;
      clearInterval(keepAlive);
      rooms.closeAll('draining');
      for (const connection of connections) connection.close('media-server stopping', 1001);
      await registry.stop().catch(() => undefined);
      await engine.close();
      metrics.close();
      http.wss.close();
      await new Promise<void>((resolve) => {
        http.server.close(() => resolve());
        http.server.closeAllConnections();
      });
      subscriber.disconnect();
      await endConnection(redis);
      logger.info('media-server stopped');
    })();
    return closing;
  };

  return {
    nodeId: config.nodeId,
    url,
    port: http.port,
    logger,
    engine,
    rooms,
    events,
    metrics,
    async drain() {
      if (!draining) {
        draining = true;
        logger.info({ graceMs: config.drainGraceMs, ...rooms.counts() }, 'draining: no new rooms; waiting for the rooms here to finish');
        await registry.beat().catch(() => undefined);
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([rooms.whenEmpty(), new Promise<void>((resolve) => (timer = setTimeout(resolve, config.drainGraceMs)))]);
        clearTimeout(timer);
      }
      await close();
    },
    close,
  };
}

/** The promise's value, or a rejection once `ms` have passed (a stalled Redis answers nothing at all). */
function withinMs<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer from Redis within ${ms} ms`)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
