import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOB_QUEUE_PREFIX, JOB_QUEUES, NOTIFY_QUEUE_NAME, NOTIFY_QUEUE_PREFIX, type QueueEvent } from '@clinic-hub/protocol';
import { fixtureWorkerEnv, startAiWorkerProcess, writeFixtureModels, type AiWorkerProcess } from '@clinic-hub/test-kit/worker-fixtures';
import { tempDir } from '@clinic-hub/test-kit/tmp';
import { startNotifyFixture, startWorkerProcess, type NotifyFixture, type WorkerProcess } from '@clinic-hub/test-kit/notify-fixture';
import { CONSULT_HUB_ENV, announceMediaNode, connectConsult, consultRequest } from '@clinic-hub/test-kit/consult-client';
import { startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { jsonLogLines } from '@clinic-hub/test-kit/log-lines';
import { connectQueue, expectOk, recordArrivals, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { waitFor } from '@clinic-hub/test-kit/wait';

/**
 * One trace from a client action into the jobs it causes and the workers'
 * log lines for them, across real processes: a hub node, the notification
 * worker (whose queue watcher makes notices of queue changes) and an AI
 * worker (fixture models). Each action sends a known `traceparent`.
 */
const CLINIC = 'testclinic';
const tmp = tempDir();
let fixture: NotifyFixture;
let redis: Redis;
let hub: HubNodeProcess;
let notifyWorker: WorkerProcess;
let aiWorker: AiWorkerProcess;
const sockets: { close(): void }[] = [];

beforeAll(async () => {
  fixture = await startNotifyFixture();
  redis = new Redis(fixture.redisUrl);
  await announceMediaNode(redis, { id: 'media-traced' });
  writeFixtureModels(`${tmp.dir}/models`);
  aiWorker = startAiWorkerProcess(fixtureWorkerEnv(fixture.redisUrl, `${tmp.dir}/models`, { AI_WORKER_ID: 'ai-traced', LOG_LEVEL: 'info' }));
  [hub, notifyWorker] = await Promise.all([
    startHubProcess({ redisUrl: fixture.redisUrl, nodeId: 'traced', env: { ...fixture.env(), ...CONSULT_HUB_ENV } }),
    startWorkerProcess(fixture.env({ NOTIFY_NODE_ID: 'notify-traced' })),
    waitFor('the AI worker to be ready', () => aiWorker.output().includes('AI worker ready'), 30_000),
  ]);
});

afterAll(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  if (aiWorker && aiWorker.child.exitCode === null) {
    aiWorker.child.kill('SIGTERM');
    await aiWorker.exited;
  }
  await notifyWorker?.stop();
  await hub?.stop();
  redis?.disconnect();
  await fixture?.stop();
  tmp.cleanup();
});

/** A caller's trace: its id and the span the caller sends as the parent. */
function callerTrace(traceId: string) {
  const span = traceId.slice(0, 16);
  return { traceId, span, traceparent: `00-${traceId}-${span}-01` };
}

/** The trace id and parent span a job was added with. */
function jobTrace(data: { traceparent?: string }): { traceId: string; span: string } {
  const [version, traceId, span, flags] = String(data.traceparent).split('-');
  expect([version, flags]).toEqual(['00', '01']);
  return { traceId: traceId!, span: span! };
}

async function staffSocket(): Promise<QueueSocket> {
  const socket = await connectQueue(hub.url, await tokenFor('staff'));
  sockets.push(socket);
  return socket;
}

describe('a consultation’s trace', () => {
  it('reaches every log line of the AI worker’s session for it, through the job the admission added', async () => {
    const caller = callerTrace('5e1c0a7f3b9d4e21a6c8f0b2d4e6a8c0');
    const reception = await staffSocket();
    expectOk(await request(reception, 'queue:checkin', { dept: 'online' }));
    const doctor = await connectConsult(hub.url, await tokenFor('doctor', CLINIC, { sub: 'doctor:traced' }));
    sockets.push(doctor);
    const consult = expectOk(await consultRequest(doctor, 'consult:admit', { dept: 'online', room: 'v1', traceparent: caller.traceparent } as never)).consultation.id;

    // The job holds the hub's span of the admission as its parent.
    const queue = new Queue(JOB_QUEUES.aiSessions, { connection: redis, prefix: JOB_QUEUE_PREFIX });
    const jobId = `${CLINIC}.${consult}`;
    try {
      const job = await waitFor('the AI session job', () => queue.getJob(jobId));
      const added = jobTrace(job.data);
      expect(added.traceId).toBe(caller.traceId);
      expect(added.span).not.toBe(caller.span);

      const linesOf = () => jsonLogLines(aiWorker.output()).filter((line) => line.job === jobId);
      await waitFor('the session to start on the worker', () => linesOf().some((line) => line.msg === 'AI session started'), 15_000);
      expectOk(await consultRequest(doctor, 'consult:end', { consult }));
      const lines = await waitFor('the session to finish', () => (linesOf().some((line) => String(line.msg).startsWith('AI session finished')) ? linesOf() : undefined), 15_000);
      for (const line of lines) expect(line).toMatchObject({ trace_id: caller.traceId, parent_span_id: added.span, consult });
      expect(lines[0]!.span_id).toMatch(/^[0-9a-f]{16}$/);
    } finally {
      await queue.close();
    }
  });
});

describe('a queue action’s trace', () => {
  it('reaches the notices the queue watcher makes of it, and the worker’s log lines for them; displays get nothing more', async () => {
    const checkinTrace = callerTrace('7d3f9a1c5e2b4c6d8e0f1a3b5c7d9e1f');
    const callTrace = callerTrace('9b2e4d6f8a0c1e3f5a7b9c0d2e4f6a8b');
    const display = await connectQueue(hub.url, await tokenFor('display'));
    sockets.push(display);
    const shown = recordArrivals(display);
    const reception = await staffSocket();

    const queue = new Queue(NOTIFY_QUEUE_NAME, { connection: redis, prefix: NOTIFY_QUEUE_PREFIX });
    /** The notice's job continues the caller's trace, and so does every log line of the worker's attempt until it is sent. */
    const expectTracedNotice = async (key: string, caller: ReturnType<typeof callerTrace>) => {
      const jobId = `${CLINIC}.${key}`;
      const job = await waitFor(`the ${key} notice`, () => queue.getJob(jobId), 15_000);
      const added = jobTrace(job.data);
      expect(added.traceId, key).toBe(caller.traceId);
      const linesOf = () => jsonLogLines(notifyWorker.logs()).filter((line) => line.job === jobId);
      const lines = await waitFor(`the worker to send ${key}`, () => (linesOf().some((line) => line.msg === 'notification sent') ? linesOf() : undefined), 15_000);
      for (const line of lines) expect(line, key).toMatchObject({ trace_id: caller.traceId, parent_span_id: added.span });
    };
    try {
      // First in line in peds: the check-in itself makes the "1 ahead" notice; calling the ticket makes "called".
      const checkin = expectOk(await request(reception, 'queue:checkin', { dept: 'peds', notify: { channel: 'in_app' }, traceparent: checkinTrace.traceparent } as never));
      const ticket = checkin.event.ticket.id;
      await expectTracedNotice(`ticket.${ticket}.queue_1_ahead`, checkinTrace);
      const called = expectOk(await request(reception, 'queue:call-next', { dept: 'peds', room: 'r3', traceparent: callTrace.traceparent } as never));
      expect(called.event.ticket.id).toBe(ticket);
      await expectTracedNotice(`ticket.${ticket}.queue_called.0`, callTrace);

      // Displays see the events exactly as acked, live and on queue:sync: no trace anywhere.
      await waitFor('both events on the display', () => shown.events.length >= 2);
      const replayed = expectOk(await request(display, 'queue:sync', { afterSeq: checkin.event.seq - 1 })) as unknown as { mode: string; events: QueueEvent[] };
      expect(replayed.mode).toBe('events');
      expect(shown.events.slice(-2)).toEqual([checkin.event, called.event]);
      expect(replayed.events.slice(0, 2)).toEqual([checkin.event, called.event]);
      const seen = JSON.stringify([shown.events, replayed.events]);
      for (const caller of [checkinTrace, callTrace]) expect(seen).not.toContain(caller.traceId);
    } finally {
      await queue.close();
    }
  });
});
