import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestRedis } from '@clinic-hub/test-kit/redis';
import { startTestHubs, stopTestHubs, testTokens, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';

let redis: TestRedis;
let nodeA: HubNodeProcess;
let nodeB: HubNodeProcess;
const sockets: QueueSocket[] = [];

beforeAll(async () => {
  ({ redis, nodes: [nodeA, nodeB] } = await startTestHubs(['ops-a', 'ops-b']));
});
afterAll(async () => {
  for (const s of sockets) s.close();
  await stopTestHubs(redis, [nodeA, nodeB]);
});

async function get(url: string, token: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: await res.json() };
}

describe('ops API', () => {
  it('lists every hub node with its clients by role, and Redis', async () => {
    const screen = async (sub: string) => (await testTokens.issue({ sub, role: 'display', clinic: 'testclinic' }, 600)).token;
    sockets.push(await connectQueue(nodeA.url, await screen('display:lobby-tv')));
    sockets.push(await connectQueue(nodeB.url, await screen('display:2f-tv')));
    sockets.push(await connectQueue(nodeB.url, await tokenFor('staff')));
    await request(sockets[2]!, 'queue:checkin', { dept: 'gp' });
    // Heartbeats come every 5 s; wait for one carrying these clients.
    let status: any;
    for (let i = 0; i < 40; i++) {
      status = (await get(`${nodeA.url}/api/ops/status`, await tokenFor('admin', '*'))).body;
      const a = status.nodes.find((n: any) => n.nodeId === 'ops-a');
      const b = status.nodes.find((n: any) => n.nodeId === 'ops-b');
      if (a?.clients.display === 1 && b?.clients.staff === 1 && b?.clients.display === 1) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(status.nodes.map((n: any) => n.nodeId)).toEqual(['ops-a', 'ops-b']);
    expect(status.nodes.every((n: any) => n.up)).toBe(true);
    expect(status.nodes.find((n: any) => n.nodeId === 'ops-a').clients).toMatchObject({ display: 1 });
    expect(status.nodes.find((n: any) => n.nodeId === 'ops-b').clients).toMatchObject({ display: 1, staff: 1 });
    expect(status.redis).toMatchObject({ up: true, aof: true });
    expect(status.clinics.find((c: any) => c.id === 'testclinic')).toMatchObject({ waiting: { gp: 1, peds: 0 }, called: 0 });
  });

  it('shows connected screens, and screens that left with when they were last seen', async () => {
    const token = await tokenFor('staff');
    const before = (await get(`${nodeB.url}/api/clinics/testclinic/displays`, token)).body.displays;
    expect(before.filter((d: any) => d.online)).toHaveLength(2);
    sockets[0]!.close();
    let after: any[] = [];
    for (let i = 0; i < 20; i++) {
      after = (await get(`${nodeB.url}/api/clinics/testclinic/displays`, token)).body.displays;
      if (after.filter((d: any) => d.online).length === 1) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(after.filter((d: any) => d.online)).toHaveLength(1);
    expect(after.find((d: any) => !d.online)).toMatchObject({ node: 'ops-a', sub: 'display:lobby-tv' });
  });

  it('refuses displays and patients, and staff of another clinic', async () => {
    expect((await get(`${nodeA.url}/api/ops/status`, await tokenFor('display'))).status).toBe(403);
    expect((await get(`${nodeA.url}/api/clinics/testclinic/displays`, await tokenFor('staff', 'otherclinic'))).status).toBe(403);
    const own = (await get(`${nodeA.url}/api/ops/status`, await tokenFor('staff', 'otherclinic'))).body;
    expect(own.clinics.map((c: any) => c.id)).toEqual(['otherclinic']);
  });
});
