/**
 * AI results in a consultation reach its clinicians and nobody else: the AI
 * workers SPUBLISH AiResultMessage JSON on the clinic's consult-ai channel
 * (the wire contract of protocol/src/consult.ts, published here with
 * ioredis as a worker would), every hub node relays it to its own sockets
 * that subscribed, and the history of final results is read from the AI
 * stream, each read in the audit stream.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AI_RESULT_FIELD, consultAiChannel, consultKeys, type AiEmotion, type AiResultMessage, type AiTranscript } from '@clinic-hub/protocol';
import { readAudit } from '../src/audit/audit-log.js';
import { CONSULT_HUB_ENV, announceMediaNode, connectConsult, consultRequest, recordConsult, startHubProcesses, type ConsultSocket } from '@clinic-hub/test-kit/consult-client';
import { tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, expectOk, request, type QueueSocket } from '@clinic-hub/test-kit/queue-client';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { sleep, waitFor } from '@clinic-hub/test-kit/wait';

const CLINIC = 'testclinic';
const SETTLE_MS = 500;

let redisServer: TestRedis;
let redis: Redis;
let nodeA: HubNodeProcess;
let nodeB: HubNodeProcess;
let reception: QueueSocket;
const sockets: { close(): void }[] = [];
let consultId = '';
let ticketId = '';

async function open(node: HubNodeProcess, role: 'admin' | 'staff' | 'doctor' | 'patient', sub: string, options: { ticket?: string; clinic?: string } = {}): Promise<ConsultSocket> {
  const socket = await connectConsult(node.url, await tokenFor(role, options.clinic ?? CLINIC, { sub, ...(options.ticket ? { ticket: options.ticket } : {}) }));
  sockets.push(socket);
  return socket;
}

/** The patient's utterance n: what a transcript and an emotion score of it share. */
const utterance = (n: number) => ({
  consult: consultId,
  participant: `patient:${ticketId}`,
  role: 'patient' as const,
  utterance: `u${n}`,
  startMs: 1_000 * n,
  endMs: 1_000 * n + 800,
  engine: 'test',
});

const transcript = (n: number, kind: 'partial' | 'final' = 'final'): AiTranscript => ({ ...utterance(n), kind, text: `頭が痛いです ${n}`, language: 'ja' });

const emotion = (n: number): AiEmotion => ({
  ...utterance(n),
  labels: [
    { label: 'calm', p: 0.7 },
    { label: 'anxious', p: 0.3 },
  ],
  arousal: 0.4,
  stress: 0.35,
});

const publish = (message: AiResultMessage | string, clinic = CLINIC) =>
  redis.spublish(consultAiChannel(clinic), typeof message === 'string' ? message : JSON.stringify(message));

beforeAll(async () => {
  redisServer = await startTestRedis();
  redis = new Redis(redisServer.url);
  await announceMediaNode(redis, { id: 'media-ai', url: 'ws://media-ai.test:7000' });
  [nodeA, nodeB] = (await startHubProcesses([
    { redisUrl: redisServer.url, nodeId: 'consult-ai-a', env: CONSULT_HUB_ENV },
    { redisUrl: redisServer.url, nodeId: 'consult-ai-b', env: CONSULT_HUB_ENV },
  ])) as [HubNodeProcess, HubNodeProcess];
  reception = await connectQueue(nodeA.url, await tokenFor('staff'));
  ticketId = expectOk(await request(reception, 'queue:checkin', { dept: 'online' })).event.ticket.id;
  const doctor = await open(nodeA, 'doctor', 'doctor:ai');
  consultId = expectOk(await consultRequest(doctor, 'consult:admit', { dept: 'online', room: 'v1' })).consultation.id;
});

afterAll(async () => {
  for (const socket of sockets.splice(0)) socket.close();
  reception?.close();
  await Promise.all([nodeA?.stop(), nodeB?.stop()]);
  redis?.disconnect();
  await redisServer?.cleanup();
});

describe('the AI relay', () => {
  it('reaches the clinicians who follow the consultation, on either node, once each; never the patient', async () => {
    const doctor = await open(nodeA, 'doctor', 'doctor:ai');
    const nurse = await open(nodeB, 'staff', 'staff:nurse');
    const colleague = await open(nodeB, 'doctor', 'doctor:not-following');
    const patient = await open(nodeB, 'patient', `patient:${ticketId}`, { ticket: ticketId });
    const got = { doctor: recordConsult(doctor), nurse: recordConsult(nurse), colleague: recordConsult(colleague), patient: recordConsult(patient) };
    expectOk(await consultRequest(doctor, 'consult:subscribe', { consult: consultId }));
    expectOk(await consultRequest(nurse, 'consult:subscribe', { consult: consultId }));
    // The patient may not follow: refused by role, and nothing of it reaches them below.
    expect(await consultRequest(patient, 'consult:subscribe', { consult: consultId })).toMatchObject({ ok: false, error: { code: 'AUTH_FORBIDDEN' } });

    await publish({ type: 'transcript', payload: transcript(1, 'partial') });
    await publish({ type: 'transcript', payload: transcript(1) });
    await publish({ type: 'emotion', payload: emotion(1) });

    for (const who of [got.doctor, got.nurse]) {
      await waitFor('two transcripts and an emotion score', () => who.transcripts.length === 2 && who.emotions.length === 1);
      expect(who.transcripts.map((t) => t.kind)).toEqual(['partial', 'final']);
      expect(who.transcripts[1]).toEqual(transcript(1));
      expect(who.emotions[0]).toEqual(emotion(1));
    }
    await sleep(SETTLE_MS);
    expect(got.doctor.transcripts).toHaveLength(2);
    expect(got.nurse.transcripts).toHaveLength(2);
    expect(got.patient.transcripts).toEqual([]);
    expect(got.patient.emotions).toEqual([]);
    expect(got.colleague.transcripts).toEqual([]);

    // After unsubscribing, nothing more.
    expectOk(await consultRequest(nurse, 'consult:unsubscribe', { consult: consultId }));
    await publish({ type: 'transcript', payload: transcript(2) });
    await waitFor('the doctor gets the next one', () => got.doctor.transcripts.length === 3);
    await sleep(SETTLE_MS);
    expect(got.nurse.transcripts).toHaveLength(2);
    expect(got.patient.transcripts).toEqual([]);
  });

  it('relays nothing that breaks the contract, nor another clinic\'s results, and the nodes keep relaying', async () => {
    const doctor = await open(nodeB, 'doctor', 'doctor:ai');
    const got = recordConsult(doctor);
    expectOk(await consultRequest(doctor, 'consult:subscribe', { consult: consultId }));
    await publish('{ not json');
    await publish(JSON.stringify({ type: 'transcript', payload: { ...transcript(3), text: 42 } }));
    await publish(JSON.stringify({ type: 'gossip', payload: transcript(3) }));
    await publish(JSON.stringify({ type: 'emotion', payload: { ...emotion(3), arousal: 7 } }));
    // The same consultation id published on another clinic's channel is that clinic's business, not this room's.
    await publish({ type: 'transcript', payload: transcript(4) }, 'otherclinic');
    await publish({ type: 'transcript', payload: transcript(5) });
    await waitFor('the good one', () => got.transcripts.some((t) => t.utterance === 'u5'));
    await sleep(SETTLE_MS);
    expect(got.transcripts.map((t) => t.utterance)).toEqual(['u5']);
    expect(got.emotions).toEqual([]);
    expect((await fetch(`${nodeA.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${nodeB.url}/healthz`)).status).toBe(200);
  });

  it('a clinician of another clinic cannot follow this consultation', async () => {
    const stranger = await open(nodeA, 'doctor', 'doctor:elsewhere', { clinic: 'otherclinic' });
    const got = recordConsult(stranger);
    expect(await consultRequest(stranger, 'consult:subscribe', { consult: consultId })).toMatchObject({ ok: false, error: { code: 'CONSULT_NOT_FOUND' } });
    expect(await consultRequest(stranger, 'consult:ai-history', { consult: consultId })).toMatchObject({ ok: false, error: { code: 'CONSULT_NOT_FOUND' } });
    await publish({ type: 'transcript', payload: transcript(6) });
    await sleep(SETTLE_MS);
    expect(got.transcripts).toEqual([]);
  });

  it('serves the history of final results to clinicians, each read in the audit stream first', async () => {
    const ai = consultKeys(CLINIC, consultId).ai;
    const written: AiResultMessage[] = [
      { type: 'transcript', payload: transcript(1) },
      { type: 'emotion', payload: emotion(1) },
      { type: 'transcript', payload: transcript(2) },
    ];
    // As the AI workers append finals and emotion scores.
    for (const message of written) await redis.xadd(ai, '*', AI_RESULT_FIELD, JSON.stringify(message));
    await redis.xadd(ai, '*', AI_RESULT_FIELD, '{ broken');

    const doctor = await open(nodeB, 'doctor', 'doctor:history');
    const first = expectOk(await consultRequest(doctor, 'consult:ai-history', { consult: consultId, limit: 2 }));
    expect(first.results.map(({ id: _id, ...message }) => message)).toEqual(written.slice(0, 2));
    expect(first.hasMore).toBe(true);
    const rest = expectOk(await consultRequest(doctor, 'consult:ai-history', { consult: consultId, after: first.results[1]!.id }));
    expect(rest.results.map(({ id: _id, ...message }) => message)).toEqual(written.slice(2));
    expect(rest.hasMore).toBe(false);

    const audit = await readAudit(redis, CLINIC, 50);
    const reads = audit.filter((e) => e.action === 'consult.ai.read' && e.actor === 'doctor:history');
    expect(reads).toHaveLength(2);
    expect(reads[0]).toMatchObject({ role: 'doctor', subject: consultId });
    expect(audit.some((e) => e.action === 'consult.ai.subscribe' && e.actor === 'staff:nurse' && e.subject === consultId)).toBe(true);

    const patient = await open(nodeA, 'patient', `patient:${ticketId}`, { ticket: ticketId });
    expect(await consultRequest(patient, 'consult:ai-history', { consult: consultId })).toMatchObject({ ok: false, error: { code: 'AUTH_FORBIDDEN' } });
    const after = await readAudit(redis, CLINIC, 50);
    expect(after.filter((e) => e.role === 'patient' && e.action.startsWith('consult.ai'))).toEqual([]);
  });
});
