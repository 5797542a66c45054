import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startHubProcess, startTestHubs, stopTestHubs, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, expectOk, request, requestRaw, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import type { TestRedis } from '@clinic-hub/test-kit/redis';

/**
 * The hub's security defaults, on both servers: origin checks on the socket
 * handshake and the WebSocket upgrade, CORS for the listed origins only, rate
 * limits per socket and per user, HSTS once the public address is https.
 */
const KIOSK = 'https://kiosk.clinic.example.jp';
const LIMITS = {
  HUB_RATE_LIMIT_SOCKET_PER_SECOND: '1',
  HUB_RATE_LIMIT_SOCKET_BURST: '5',
  HUB_RATE_LIMIT_USER_PER_SECOND: '1',
  HUB_RATE_LIMIT_USER_BURST: '8',
};

let redis: TestRedis;
const hubs: Record<'uws' | 'node', HubNodeProcess> = {} as never;
const sockets: QueueSocket[] = [];

beforeAll(async () => {
  const env = { ...LIMITS, HUB_ALLOWED_ORIGINS: KIOSK, HUB_PUBLIC_URL: 'https://hub.example.jp' };
  ({ redis, nodes: [hubs.uws, hubs.node] } = await startTestHubs([{ nodeId: 'security-uws', server: 'uws' }, { nodeId: 'security-node', server: 'node' }], { env }));
});

afterAll(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await stopTestHubs(redis, Object.values(hubs));
});

async function open(url: string, role: Parameters<typeof tokenFor>[0], sub?: string): Promise<QueueSocket> {
  const socket = await connectQueue(url, await tokenFor(role, 'testclinic', sub ? { sub } : {}));
  sockets.push(socket);
  return socket;
}

/** An Engine.IO polling handshake as a browser page of `origin` would open it. */
function handshake(url: string, origin?: string) {
  return fetch(`${url}/socket.io/?EIO=4&transport=polling`, { headers: origin ? { origin } : {} });
}

/** A WebSocket opened straight away (no polling first), as Socket.IO clients with transports: ['websocket'] do. */
function upgrade(url: string, origin?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`, origin ? { origin } : {});
    ws.on('open', () => {
      ws.close();
      resolve(101);
    });
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('error', reject);
  });
}

/** Sends `count` syncs one after another and returns the codes of the refusals ('ok' for the rest). */
async function burst(socket: QueueSocket, count: number): Promise<string[]> {
  const outcomes: string[] = [];
  for (let i = 0; i < count; i++) {
    const ack = await requestRaw(socket, 'queue:sync', {});
    outcomes.push(ack.ok ? 'ok' : `${ack.error!.code} ${ack.error!.detail?.split(';')[0] ?? ''}`.trim());
  }
  return outcomes;
}

describe.each(['uws', 'node'] as const)('security defaults on %s', (kind) => {
  const url = () => hubs[kind].url;

  it('lets socket handshakes through without an Origin, from its own origin and from HUB_ALLOWED_ORIGINS only', async () => {
    expect((await handshake(url())).status).toBe(200);
    expect((await handshake(url(), url())).status).toBe(200);
    expect((await handshake(url(), 'https://hub.example.jp')).status).toBe(200);
    const kiosk = await handshake(url(), KIOSK);
    expect(kiosk.status).toBe(200);
    expect(kiosk.headers.get('access-control-allow-origin')).toBe(KIOSK);

    const evil = await handshake(url(), 'https://evil.example.com');
    expect(evil.status).toBe(403);
    expect(await evil.json()).toMatchObject({ message: 'ORIGIN_NOT_ALLOWED' });
    expect((await handshake(url(), 'null')).status).toBe(403);
  });

  it('refuses a WebSocket upgrade from another origin', async () => {
    expect(await upgrade(url())).toBe(101);
    expect(await upgrade(url(), KIOSK)).toBe(101);
    // Engine.IO refuses it with 403 on uWS and 400 on Node's server: either way, no WebSocket.
    expect([400, 403]).toContain(await upgrade(url(), 'https://evil.example.com'));
  });

  it('limits each socket to its burst, then answers RATE_LIMITED, and a socket of another user is not affected', async () => {
    const greedy = await open(url(), 'staff', `staff:greedy-${kind}`);
    expect(await burst(greedy, 7)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 'RATE_LIMITED socket limit', 'RATE_LIMITED socket limit']);
    const refused = await requestRaw(greedy, 'queue:sync', {});
    expect(refused.error?.detail).toMatch(/^socket limit; retry in \d+ ms$/);
    const other = await open(url(), 'staff', `staff:other-${kind}`);
    expectOk(await request(other, 'queue:sync', {}));
  });

  it('limits a user over all their sockets: more sockets buy no more events', async () => {
    const sub = `staff:many-sockets-${kind}`;
    const [a, b] = [await open(url(), 'staff', sub), await open(url(), 'staff', sub)];
    const outcomes = [...(await burst(a, 5)), ...(await burst(b, 5))];
    expect(outcomes.filter((o) => o === 'ok')).toHaveLength(8);
    expect(outcomes.slice(8)).toEqual(['RATE_LIMITED user limit', 'RATE_LIMITED user limit']);
  });

  it('limits display sockets per socket only: a clinic’s screens may share one token', async () => {
    const screens = [await open(url(), 'display'), await open(url(), 'display'), await open(url(), 'display')];
    for (const screen of screens) expect(await burst(screen, 5)).toEqual(['ok', 'ok', 'ok', 'ok', 'ok']);
  });

  it('takes a traceparent in any payload, even of events whose schema allows no other field', async () => {
    const socket = await open(url(), 'staff', `staff:traced-${kind}`);
    expectOk(await request(socket, 'auth:refresh', { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' } as never));
    expect(await requestRaw(socket, 'auth:refresh', { unknown: 1 })).toMatchObject({ ok: false, error: { code: 'INVALID_PAYLOAD' } });
  });

  it('sends HSTS and a strict CSP once HUB_PUBLIC_URL is https', async () => {
    for (const path of ['/healthz', '/display']) {
      const res = await fetch(`${url()}${path}`);
      expect(res.headers.get('strict-transport-security')).toBe('max-age=31536000');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    }
    const csp = (await fetch(`${url()}/display`)).headers.get('content-security-policy') ?? '';
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("object-src 'none'");
  });
});

describe('without HUB_PUBLIC_URL', () => {
  it('sends no HSTS: the hub does not know it is reached over https', async () => {
    const plain = await startHubProcess({ redisUrl: redis.url, nodeId: 'security-plain' });
    try {
      expect((await fetch(`${plain.url}/healthz`)).headers.get('strict-transport-security')).toBeNull();
      expect((await handshake(plain.url, 'https://kiosk.clinic.example.jp')).status).toBe(403);
    } finally {
      await plain.stop();
    }
  });
});
