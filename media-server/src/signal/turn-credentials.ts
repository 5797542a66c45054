import { createHmac } from 'node:crypto';
import type { IceServer } from '../config.js';

/**
 * ICE servers for one participant. TURN servers listed without a username
 * get time-limited credentials from the shared secret, as coturn's
 * `use-auth-secret` expects (username `<expiry>:<id>`, password
 * base64(HMAC-SHA1(secret, username))): a browser never holds a password
 * that outlives its consultation.
 */
export function iceServersFor(
  participantId: string,
  turn: { servers: IceServer[]; secret: string | null; credentialTtlSeconds: number },
  now = Date.now(),
): IceServer[] {
  return turn.servers.map((server) => {
    const urls = Array.isArray(server.urls) ? server.urls : [server.urls];
    if (server.username || !turn.secret || !urls.some((url) => url.startsWith('turn'))) return server;
    const username = `${Math.floor(now / 1000) + turn.credentialTtlSeconds}:${participantId}`;
    const credential = createHmac('sha1', turn.secret).update(username).digest('base64');
    return { ...server, username, credential };
  });
}
