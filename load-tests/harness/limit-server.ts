/**
 * The limit of `npm run bench:queue`: a bare uWebSockets.js server (the same
 * build, through the same npm alias, as the hub's) that does nothing but
 * publish pre-built frames to a topic. No Socket.IO, no Redis, no auth, no
 * pings: what the displays receive from it costs the server one
 * `app.publish` per frame, the least any server on uWebSockets.js can do.
 *
 * It speaks just enough Engine.IO for the hub's own display clients
 * (harness/lean-client-worker.ts) to connect unchanged: the open packet, and
 * the namespace connect answered with a sid. The benchmark's publisher
 * connects to /publish and sends one text message per call: the call's
 * frames, ready to go out, separated by "\n" (JSON text never holds a raw
 * newline); each is published as it is.
 *
 *   LIMIT_PORT=9100 LIMIT_NAMESPACE=/queue node --import tsx load-tests/harness/limit-server.ts
 */
import { randomBytes } from 'node:crypto';
import uws from 'uWebSockets.js';
import { connectFrame, encodeEngine, encodeSocketPacket } from './engine-io.js';

const port = Number(process.env.LIMIT_PORT);
const nsp = process.env.LIMIT_NAMESPACE ?? '/queue';
if (!Number.isInteger(port) || port <= 0) {
  process.stderr.write('LIMIT_PORT must be a TCP port\n');
  process.exit(64);
}

/** Everything published goes to every display on this topic. */
const TOPIC = 'displays';
/** What a display sends to join the namespace: `40/queue,` then its auth (ignored). */
const joinPrefix = connectFrame(nsp);
const openPacket = (sid: string) => encodeEngine('open', JSON.stringify({ sid, upgrades: [], pingInterval: 25_000, pingTimeout: 20_000, maxPayload: 1_000_000 }));

const app = uws.App();
app.ws('/socket.io/', {
  compression: uws.DISABLED,
  maxPayloadLength: 1 << 20,
  // The clients send nothing once joined: no idle timeout, no pings.
  idleTimeout: 0,
  sendPingsAutomatically: false,
  open: (ws) => {
    ws.send(openPacket(randomBytes(10).toString('base64url')));
  },
  message: (ws, data) => {
    const text = Buffer.from(data).toString('utf8');
    if (text.startsWith(joinPrefix)) {
      ws.subscribe(TOPIC);
      ws.send(encodeEngine('message', encodeSocketPacket({ type: 'connect', nsp, data: { sid: randomBytes(10).toString('base64url') } })));
    }
  },
});
app.ws('/publish', {
  compression: uws.DISABLED,
  maxPayloadLength: 16 << 20,
  idleTimeout: 0,
  sendPingsAutomatically: false,
  message: (_ws, data) => {
    for (const frame of Buffer.from(data).toString('utf8').split('\n')) app.publish(TOPIC, frame, false);
  },
});
app.get('/healthz', (res) => {
  res.end(JSON.stringify({ ok: true, subscribers: app.numSubscribers(TOPIC) }));
});
app.listen('127.0.0.1', port, (socket) => {
  if (!socket) {
    process.stderr.write(`limit server: cannot listen on 127.0.0.1:${port}\n`);
    process.exit(1);
  }
});

// Nothing to hand over: the displays see the connection end.
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
