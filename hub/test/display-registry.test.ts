import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DisplayPresence } from '@clinic-hub/protocol';
import { startRedisServer, type RedisProcess } from '@clinic-hub/platform/redis-server';
import { startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { waitFor } from '@clinic-hub/test-kit/wait';

/**
 * `GET /api/clinics/:id/displays` (and so `clinic displays`) tells the truth
 * about screens, whatever happened to their node or to Redis (issue 14's soak):
 *
 * - a hub node killed and restarted under the same id: the screens that were
 *   on it once showed as online for good (the new process's heartbeat kept
 *   refreshing their lastSeen); they are gone as soon as the new process beats;
 * - screens that connect while Redis is down appear once it is back, and
 *   screens that leave while it is down disappear (both were lost writes).
 */
const CLINIC = 'testclinic';
let redis: TestRedis;
let restarted: RedisProcess | null = null;
const nodes: HubNodeProcess[] = [];
const sockets: QueueSocket[] = [];

async function displays(node: HubNodeProcess): Promise<DisplayPresence[]> {
  const response = await fetch(`${node.url}/api/clinics/${CLINIC}/displays`, { headers: { authorization: `Bearer ${await tokenFor('staff')}` } });
  expect(response.status).toBe(200);
  return ((await response.json()) as { displays: DisplayPresence[] }).displays;
}

const onlineIds = (list: DisplayPresence[]) => list.filter((d) => d.online).map((d) => d.id).sort();

async function screen(node: HubNodeProcess, name: string): Promise<QueueSocket> {
  const socket = await connectQueue(node.url, await tokenFor('display', CLINIC, { sub: name }));
  sockets.push(socket);
  return socket;
}

beforeAll(async () => {
  redis = await startTestRedis();
  nodes.push(await startHubProcess({ redisUrl: redis.url, nodeId: 'reg-a' }), await startHubProcess({ redisUrl: redis.url, nodeId: 'reg-b' }));
});

afterAll(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  await Promise.all(nodes.map((node) => node.stop().catch(() => undefined)));
  await restarted?.stop();
  await redis?.cleanup();
});

describe('the display registry', () => {
  it('shows the screens of a killed and restarted node as gone, and only the real ones online', async () => {
    const [a, b] = nodes as [HubNodeProcess, HubNodeProcess];
    const onA = await Promise.all(['tv-a1', 'tv-a2', 'tv-a3'].map((name) => screen(a, name)));
    const onB = await screen(b, 'tv-b1');
    const ids = [...onA.map((s) => s.id!), onB.id!].sort();
    await waitFor('four screens online', async () => JSON.stringify(onlineIds(await displays(b))) === JSON.stringify(ids));

    a.process.kill('SIGKILL');
    await waitFor('node a to die', () => a.process.exitCode !== null || a.process.signalCode !== null);
    for (const socket of onA) socket.close();
    const again = await startHubProcess({ redisUrl: redis.url, nodeId: 'reg-a' });
    nodes[0] = again;
    const back = await screen(again, 'tv-a1');

    // The new process's first heartbeat is written before it listens: its old screens are gone from then on.
    const list = await displays(b);
    expect(onlineIds(list)).toEqual([back.id!, onB.id!].sort());
    expect(list.filter((d) => d.sub === 'tv-a2' || d.sub === 'tv-a3')).toEqual([
      expect.objectContaining({ online: false }),
      expect.objectContaining({ online: false }),
    ]);
    // And it stays so: the restarted node's heartbeats do not bring them back.
    await new Promise((resolve) => setTimeout(resolve, 5500));
    expect(onlineIds(await displays(again))).toEqual([back.id!, onB.id!].sort());
  });

  it('lists a screen that connected while Redis was down once Redis is back, and drops one that left meanwhile', async () => {
    const [a, b] = nodes as [HubNodeProcess, HubNodeProcess];
    const leaving = await screen(b, 'tv-leaves');
    await waitFor('the leaving screen listed', async () => onlineIds(await displays(a)).includes(leaving.id!));

    await redis.stop();
    const during = await screen(b, 'tv-during-outage');
    leaving.close();
    await new Promise((resolve) => setTimeout(resolve, 500));
    restarted = await startRedisServer({ dir: redis.dir, port: redis.port });

    // Within a heartbeat (5 s) of Redis being back.
    const list = await waitFor(
      'the registry put right',
      async () => {
        const current = await displays(a).catch(() => []);
        const online = onlineIds(current);
        return online.includes(during.id!) && !online.includes(leaving.id!) ? current : false;
      },
      15_000,
    );
    expect(list.find((d) => d.id === during.id)).toMatchObject({ sub: 'tv-during-outage', node: 'reg-b', online: true });
    expect(list.find((d) => d.sub === 'tv-leaves')).toMatchObject({ online: false });
  });
});
