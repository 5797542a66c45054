/**
 * `npm run soak`: a bounded soak of two hub nodes on their own Redis, with
 * churn and faults, and the properties issue 14 asked to keep checked
 * (README.md, "Soak"):
 *
 * - displays churn (some leave, new ones arrive, on either node) and follow the
 *   queue; staff on both nodes check in, call and finish patients; patients
 *   chat with the clinic;
 * - a hub node is killed (SIGKILL) and restarted under the same id; later
 *   Redis is stopped for a few seconds and restarted; clients retry as the
 *   protocol says (same requestId / clientMessageId), displays of the dead
 *   node reconnect to the other (what a load balancer does);
 *
 * then checks: every display converges on the queue in Redis; no display
 * connection received an event twice; every acknowledged chat message is in
 * its thread exactly once; the registry lists exactly the connected screens
 * (no ghosts) and /metrics counts every namespace's clients; once the clients
 * are gone the surviving node's open files and RSS are back near idle.
 * Exit code 0 when every check passed, 2 when one failed, 1 when it could
 * not run. Figures from a shared or loaded machine are not release figures.
 *
 *   npm run soak -- --seconds 60 --displays 60 --patients 6
 */
import { readFileSync, readdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { PublicTicket, QueueEvent, QueueSnapshot } from '@clinic-hub/protocol';
import { startRedisServer, type RedisProcess } from '@clinic-hub/platform/redis-server';
import { chatRequest, connectChat, type ChatSocket } from '@clinic-hub/test-kit/chat-client';
import { startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { metricSum } from '@clinic-hub/test-kit/metrics-text';
import { connectQueue, followQueue, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { startTestRedis } from '@clinic-hub/test-kit/redis';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    displays: { type: 'string', default: '60' },
    patients: { type: 'string', default: '6' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log('npm run soak -- [--seconds 60 (20-1800)] [--displays 60 (4-1000)] [--patients 6 (1-100)]');
  process.exit(0);
}
const SECONDS = Number(args.seconds);
const DISPLAYS = Number(args.displays);
const PATIENTS = Number(args.patients);
for (const [name, value, min, max] of [['seconds', SECONDS, 20, 1800], ['displays', DISPLAYS, 4, 1000], ['patients', PATIENTS, 1, 100]] as const) {
  if (!Number.isInteger(value) || value < min || value > max) {
    console.error(`--${name} must be a whole number from ${min} to ${max}`);
    process.exit(64);
  }
}
const CLINIC = 'testclinic';
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const log = (line: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);

interface Display {
  socket: QueueSocket;
  follower: ReturnType<typeof followQueue>;
  node: string;
  /** Events that arrived twice on one connection. */
  repeated: number;
  disconnectedAt: number | null;
}

interface Patient {
  ticketId: string;
  token: string;
  socket: ChatSocket | null;
  sent: string[];
}

async function main(): Promise<number> {
  const redis = await startTestRedis();
  let restartedRedis: RedisProcess | null = null;
  const nodes: Record<'a' | 'b', HubNodeProcess> = {
    a: await startHubProcess({ redisUrl: redis.url, nodeId: 'soak-a', env: { HUB_RATE_LIMIT_SOCKET_PER_SECOND: '0', HUB_RATE_LIMIT_USER_PER_SECOND: '0', LOG_LEVEL: 'warn' } }),
    b: await startHubProcess({ redisUrl: redis.url, nodeId: 'soak-b', env: { HUB_RATE_LIMIT_SOCKET_PER_SECOND: '0', HUB_RATE_LIMIT_USER_PER_SECOND: '0', LOG_LEVEL: 'warn' } }),
  };
  const alive = { a: true, b: true };
  const idle = { rss: rss(nodes.a.process.pid!), files: openFiles(nodes.a.process.pid!) };
  log(`two hub nodes on Redis ${redis.url}; node a idle: ${mib(idle.rss)} MiB RSS, ${idle.files} open files`);

  const displays = new Set<Display>();
  const liveNode = () => (alive.a && alive.b ? (Math.random() < 0.5 ? 'a' : 'b') : alive.a ? 'a' : 'b');
  let displayCounter = 0;
  async function addDisplay(): Promise<void> {
    const node = liveNode();
    const socket = await connectQueue(nodes[node].url, await tokenFor('display', CLINIC, { sub: `display:soak-${displayCounter++}` }), { reconnection: true });
    const display: Display = { socket, follower: followQueue(socket), node, repeated: 0, disconnectedAt: null };
    let seen = new Set<number>();
    socket.on('connect', () => {
      seen = new Set();
      display.disconnectedAt = null;
    });
    socket.on('disconnect', () => (display.disconnectedAt = Date.now()));
    socket.on('queue:event', (event: QueueEvent) => {
      if (seen.has(event.seq)) display.repeated++;
      seen.add(event.seq);
    });
    await display.follower.resync().catch(() => undefined);
    displays.add(display);
  }
  const removeDisplay = (display: Display) => {
    repeatedOfRemoved += display.repeated;
    display.socket.close();
    displays.delete(display);
  };
  for (let i = 0; i < DISPLAYS; i++) await addDisplay();
  log(`${DISPLAYS} displays connected`);

  // Staff: acts with a requestId and retries it until acknowledged, as docs/protocol.md says.
  const staffSockets: Partial<Record<'a' | 'b', QueueSocket>> = {};
  const staffOn = async (node: 'a' | 'b') => {
    if (!staffSockets[node]?.connected) {
      staffSockets[node]?.close();
      staffSockets[node] = await connectQueue(nodes[node].url, await tokenFor('staff', CLINIC, { sub: `staff:soak-${node}` }), { reconnection: true });
    }
    return staffSockets[node]!;
  };
  let requestCounter = 0;
  const acknowledged = { actions: 0, retries: 0 };
  async function untilAcknowledged<T>(act: (socket: QueueSocket, requestId: string) => Promise<{ ok: boolean } & T>): Promise<({ ok: true } & T) | null> {
    const requestId = `soak-${process.pid}-${requestCounter++}`;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      try {
        const ack = await act(await staffOn(liveNode()), requestId);
        if (ack.ok) {
          acknowledged.actions++;
          return ack as { ok: true } & T;
        }
        const code = (ack as unknown as { error: { code: string } }).error.code;
        if (code !== 'STORE_UNAVAILABLE' && code !== 'HUB_DRAINING') return null;
      } catch {
        // no ack (node killed, Redis away): the same requestId again
      }
      acknowledged.retries++;
      await sleep(300);
    }
    throw new Error(`action ${requestId} never acknowledged in 30 s`);
  }

  const patients: Patient[] = [];
  for (let i = 0; i < PATIENTS; i++) {
    const checkin = await untilAcknowledged((s, requestId) => request(s, 'queue:checkin', { dept: 'peds', requestId }) as never);
    const { event, patientToken } = checkin as unknown as { event: QueueEvent; patientToken: string };
    patients.push({ ticketId: event.ticket.id, token: patientToken, socket: null, sent: [] });
  }
  let messageCounter = 0;
  async function chatTurn(patient: Patient): Promise<void> {
    const threadId = `patient.${patient.ticketId}`;
    const clientMessageId = `soak-msg-${process.pid}-${messageCounter++}`;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      try {
        if (!patient.socket?.connected) {
          patient.socket?.close();
          patient.socket = await connectChat(nodes[liveNode()].url, patient.token);
          await chatRequest(patient.socket, 'chat:join', { threadId });
        }
        const ack = await chatRequest(patient.socket, 'chat:send', { threadId, clientMessageId, text: `soak ${clientMessageId}` });
        if (ack.ok) {
          patient.sent.push(ack.message.id);
          return;
        }
      } catch {
        // resend the same clientMessageId
      }
      await sleep(300);
    }
    throw new Error(`chat message ${clientMessageId} never acknowledged in 30 s`);
  }

  // The load, with churn, until the end; the faults on a schedule.
  const started = Date.now();
  const until = started + SECONDS * 1000;
  let running = true;
  const staffLoop = (async () => {
    while (running) {
      const roll = Math.random();
      if (roll < 0.5) await untilAcknowledged((s, requestId) => request(s, 'queue:checkin', { dept: 'gp', requestId }) as never);
      else if (roll < 0.8) await untilAcknowledged((s, requestId) => request(s, 'queue:call-next', { dept: 'gp', room: Math.random() < 0.5 ? 'r1' : 'r2', requestId }) as never);
      else {
        const called = [...displays][0]?.follower.calls()[0];
        if (called) await untilAcknowledged((s, requestId) => request(s, 'queue:done', { ticketId: called.id, requestId }) as never);
      }
      await sleep(150);
    }
  })();
  const chatLoop = (async () => {
    while (running) {
      await Promise.all(patients.map((p) => chatTurn(p)));
      await sleep(500);
    }
  })();
  const churnLoop = (async () => {
    while (running) {
      await sleep(1000);
      const list = [...displays];
      // A few leave, as many arrive; displays whose node is gone move (the load balancer's part).
      for (let i = 0; i < Math.max(1, DISPLAYS / 20); i++) removeDisplay(list[Math.floor(Math.random() * list.length)]!);
      for (const display of displays) if (display.disconnectedAt !== null && Date.now() - display.disconnectedAt > 1500) removeDisplay(display);
      while (displays.size < DISPLAYS) await addDisplay().catch(() => sleep(200));
    }
  })();
  const loops = [staffLoop, chatLoop, churnLoop];

  await sleep(SECONDS * 300);
  log(`fault 1: node b killed (SIGKILL) with ${[...displays].filter((d) => d.node === 'b').length} displays on it`);
  alive.b = false;
  nodes.b.process.kill('SIGKILL');
  await sleep(2000);
  nodes.b = await startHubProcess({ redisUrl: redis.url, nodeId: 'soak-b', env: { HUB_RATE_LIMIT_SOCKET_PER_SECOND: '0', HUB_RATE_LIMIT_USER_PER_SECOND: '0', LOG_LEVEL: 'warn' } });
  alive.b = true;
  log('node b restarted under the same id');

  await sleep(Math.max(0, started + SECONDS * 600 - Date.now()));
  log('fault 2: Redis stopped for 3 s');
  await redis.stop();
  await sleep(3000);
  restartedRedis = await startRedisServer({ dir: redis.dir, port: redis.port });
  log('Redis restarted');

  await sleep(Math.max(0, until - Date.now()));
  running = false;
  const stopped = await Promise.allSettled(loops);
  const loopErrors = stopped.filter((s) => s.status === 'rejected').map((s) => String((s as PromiseRejectedResult).reason));
  log(`load stopped after ${((Date.now() - started) / 1000).toFixed(0)} s: ${acknowledged.actions} staff actions acknowledged (${acknowledged.retries} retries), ${patients.reduce((n, p) => n + p.sent.length, 0)} chat messages; settling`);

  const checks: { name: string; ok: boolean; detail: string }[] = [];
  const check = (name: string, ok: boolean, detail: string) => checks.push({ name, ok, detail });
  check('every action and message acknowledged', loopErrors.length === 0, loopErrors.join('; ') || 'yes');

  // Displays converge on what Redis holds.
  const staffToken = await tokenFor('staff', CLINIC);
  const snapshotOf = async () => (await (await fetch(`${nodes.a.url}/api/clinics/${CLINIC}/queue`, { headers: { authorization: `Bearer ${staffToken}` } })).json()) as QueueSnapshot;
  const same = (display: Display, tickets: PublicTicket[]) =>
    display.follower.tickets.size === tickets.length && tickets.every((t) => display.follower.tickets.get(t.id)?.status === t.status);
  let snapshot = await snapshotOf();
  const convergeDeadline = Date.now() + 20_000;
  while (Date.now() < convergeDeadline && ![...displays].every((d) => same(d, snapshot.tickets))) {
    await sleep(500);
    for (const d of displays) if (!same(d, snapshot.tickets)) void d.follower.resync().catch(() => undefined);
    snapshot = await snapshotOf();
  }
  const diverged = [...displays].filter((d) => !same(d, snapshot.tickets)).length;
  check('displays converge on the queue', diverged === 0, `${displays.size - diverged} of ${displays.size} show the ${snapshot.tickets.length} active tickets of seq ${snapshot.seq}`);
  const repeated = [...displays].reduce((n, d) => n + d.repeated, 0) + repeatedOfRemoved;
  check('no event twice on one connection', repeated === 0, `${repeated} repeated deliveries`);

  // Chat: every acknowledged message once.
  const reader = await connectChat(nodes.a.url, await tokenFor('staff', CLINIC, { sub: 'staff:soak-reader' }));
  let lost = 0;
  let doubled = 0;
  let total = 0;
  for (const patient of patients) {
    // The whole thread, page by page (after the last id read).
    const ids: string[] = [];
    for (let after: string | undefined; ; ) {
      const page = await chatRequest(reader, 'chat:history', { threadId: `patient.${patient.ticketId}`, limit: 100, ...(after ? { after } : { after: '0-0' }) });
      if (!page.ok || page.messages.length === 0) break;
      ids.push(...page.messages.map((m) => m.id));
      after = page.messages.at(-1)!.id;
      if (!page.hasNewer) break;
    }
    for (const id of patient.sent) {
      total++;
      const count = ids.filter((x) => x === id).length;
      if (count === 0) lost++;
      if (count > 1) doubled++;
    }
  }
  check('every chat message kept once', lost === 0 && doubled === 0, `${total} acknowledged, ${lost} lost, ${doubled} twice`);

  // Metrics count every namespace: patients on /chat.
  const connectedPatients = patients.filter((p) => p.socket?.connected).length;
  const metrics = (await Promise.all(Object.values(nodes).map(async (n) => (await fetch(`${n.url}/metrics`)).text()))).join('\n');
  const countedPatients = metricSum(metrics, 'clinic_hub_connected_clients', { role: 'patient', namespace: '/chat' });
  check('/metrics counts patients on /chat', countedPatients === connectedPatients, `${countedPatients} counted, ${connectedPatients} connected`);

  // No ghosts: the registry lists the connected screens, and only those, within 20 s.
  const registry = async () =>
    ((await (await fetch(`${nodes.a.url}/api/clinics/${CLINIC}/displays`, { headers: { authorization: `Bearer ${staffToken}` } })).json()) as { displays: { id: string; online: boolean }[] }).displays;
  let online: string[] = [];
  const connected = () => new Set([...displays].filter((d) => d.socket.connected).map((d) => d.socket.id!));
  const ghostDeadline = Date.now() + 20_000;
  while (Date.now() < ghostDeadline) {
    online = (await registry()).filter((d) => d.online).map((d) => d.id);
    const real = connected();
    if (online.length === real.size && online.every((id) => real.has(id))) break;
    await sleep(1000);
  }
  const real = connected();
  const ghosts = online.filter((id) => !real.has(id)).length;
  const missing = [...real].filter((id) => !online.includes(id)).length;
  check('no ghost screens', ghosts === 0 && missing === 0, `${online.length} online in the registry, ${real.size} connected: ${ghosts} ghosts, ${missing} missing`);

  // Back to idle once the clients have gone.
  for (const display of [...displays]) removeDisplay(display);
  for (const patient of patients) patient.socket?.close();
  for (const socket of Object.values(staffSockets)) socket?.close();
  reader.close();
  await sleep(5000);
  const after = { rss: rss(nodes.a.process.pid!), files: openFiles(nodes.a.process.pid!) };
  check(
    'node a back to idle',
    after.files <= idle.files + 10 && after.rss <= idle.rss + 150 * 1048576,
    `open files ${idle.files} → ${after.files}; RSS ${mib(idle.rss)} → ${mib(after.rss)} MiB (allowed: +10 files, +150 MiB)`,
  );

  await Promise.all(Object.values(nodes).map((n) => n.stop().catch(() => undefined)));
  await restartedRedis?.stop();
  await redis.cleanup().catch(() => undefined);

  console.log(`\nSoak: ${SECONDS} s, ${DISPLAYS} displays with churn, ${PATIENTS} chatting patients, two hub nodes (one killed and restarted), Redis restarted after a 3 s outage`);
  console.log('Figures from this machine under its current load; not release figures.\n');
  for (const c of checks) console.log(`${c.ok ? 'PASS' : 'FAIL'}  ${c.name}: ${c.detail}`);
  return checks.every((c) => c.ok) ? 0 : 2;

  function rss(pid: number): number {
    return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
  }
  function openFiles(pid: number): number {
    return readdirSync(`/proc/${pid}/fd`).length;
  }
}

/** Repeated deliveries of displays that have left (counted as they leave). */
let repeatedOfRemoved = 0;
const mib = (bytes: number) => (bytes / 1048576).toFixed(0);

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    console.error(`soak could not run: ${error.stack ?? error.message}`);
    process.exit(1);
  },
);
