import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { pino, type Logger } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { JOB_QUEUE_PREFIX, JOB_QUEUES, consultControlChannel, type ConsultControlMessage, type ServerSignal, type TracedJob } from '@clinic-hub/protocol';
import { loadAiConfig } from '@clinic-hub/ai-workers';
import { loadEngines, type Engines } from '@clinic-hub/ai-workers';
import { startAiWorker, type RunningAiWorker } from '@clinic-hub/ai-workers';
import { EncryptedRecordingSource } from '@clinic-hub/ai-workers';
import { fixtureWorkerEnv, writeFixtureModels } from '@clinic-hub/test-kit/worker-fixtures';
import { jsonLogLines } from '@clinic-hub/test-kit/log-lines';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { waitFor } from '@clinic-hub/test-kit/wait';
import type { RunningMediaServer } from '../src/media-server.js';
import { parseRecordingKey } from '@clinic-hub/recordings';
import { RecordingJobs, aiRecordingJobId, finaliseJobId, purgeJobId, startRecordingWorker, type RecordingWorker } from '../src/recording/recording-jobs.js';
import { getRecording } from '@clinic-hub/recordings';
import { WeriftRecorder } from '../src/recording/room-recorder.js';
import { MEDIA_TEST_ENGINES, roomToken, startTestMediaServer } from '@clinic-hub/test-kit/media-node';
import { joinPeer, type TestPeer } from '@clinic-hub/test-kit/engine-peer';
import { makeEncodedMedia } from '@clinic-hub/test-kit/recording-media';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

/**
 * A recording's jobs continue the trace of the consultation action that
 * stopped it: Node peers signal a real SFU (each engine), the real recorder writes and
 * encrypts, the recordings worker finalises, and an AI worker (fixture
 * models) transcribes the whole recording. Every service logs to its own
 * captured logger, so each hop's lines can be read.
 */
const CLINIC = 'testclinic';
const CONSULT = 'consult-traced-rec';
const DOCTOR = 'doctor:testclinic:d-trace';
const PATIENT = 'patient:testclinic:p-trace';
const key = parseRecordingKey(randomBytes(32).toString('base64'))!;

/** A logger whose JSON lines the test reads back. */
function capturedLogger(): { logger: Logger; lines(): Record<string, unknown>[] } {
  let output = '';
  return { logger: pino({ level: 'info' }, { write: (line: string) => void (output += line) }), lines: () => jsonLogLines(output) };
}

/** A browser's trace: its id and the span it sends as the parent. */
function browserTrace(traceId: string) {
  const span = traceId.slice(16);
  return { traceId, span, traceparent: `00-${traceId}-${span}-01` };
}

/** The trace id and parent span a job was added with. */
function addedWith(job: { data: TracedJob } | undefined): { traceId?: string; span?: string } {
  const [, traceId, span] = String(job?.data.traceparent).split('-');
  return { traceId, span };
}

describe.each(MEDIA_TEST_ENGINES)('a recording’s trace ($name)', ({ name: engine, env }) => {
  const rooms = capturedLogger();
  const recordings = capturedLogger();
  const ai = capturedLogger();
  let redisServer: TestRedis;
  let redis: Redis;
  let dir: string;
  let server: RunningMediaServer;
  let jobs: RecordingJobs;
  let recorder: WeriftRecorder;
  let worker: RecordingWorker;
  let engines: Engines;
  let aiWorker: RunningAiWorker;
  let doctor: TestPeer;
  let patient: TestPeer;
  let queue: Queue<TracedJob>;
  let aiQueue: Queue<TracedJob>;

  beforeAll(async () => {
    redisServer = await startTestRedis();
    redis = new Redis(redisServer.url);
    dir = mkdtempSync(join(tmpdir(), 'recording-trace-'));
    const media = await makeEncodedMedia(dir, { seconds: 8 });
    const storage = { dir: join(dir, 'recordings'), key };
    jobs = new RecordingJobs(redisServer.url, recordings.logger);
    recorder = new WeriftRecorder({ redis, config: { ...storage, retentionMs: 86_400_000, segmentMs: 600_000 }, jobs, nodeId: 'media-trace', logger: recordings.logger });
    server = await startTestMediaServer({ env, redisUrl: redisServer.url, recorder, logger: rooms.logger });
    worker = startRecordingWorker({ redisTarget: redisServer.url, ...storage, logger: recordings.logger });
    writeFixtureModels(join(dir, 'models'));
    const config = loadAiConfig(fixtureWorkerEnv(redisServer.url, join(dir, 'models'), { AI_WORKER_ID: 'ai-trace' }));
    engines = await loadEngines(config);
    aiWorker = await startAiWorker(config, { logger: ai.logger, engines, recordings: new EncryptedRecordingSource(redis, storage) });
    queue = new Queue(JOB_QUEUES.recordings, { connection: redis, prefix: JOB_QUEUE_PREFIX });
    aiQueue = new Queue(JOB_QUEUES.aiRecordings, { connection: redis, prefix: JOB_QUEUE_PREFIX });

    doctor = await joinPeer(engine, server.url, roomToken({ sub: DOCTOR, part: 'doctor', consult: CONSULT }), { media });
    patient = await joinPeer(engine, server.url, roomToken({ sub: PATIENT, part: 'patient', consult: CONSULT }), { media });
    const receiving = (peer: TestPeer, from: string) => peer.packetsFrom(from, 'audio') > 0 && peer.packetsFrom(from, 'video') > 0;
    await doctor.until(() => receiving(doctor, PATIENT), 20_000, 'the doctor to receive the patient');
    await patient.until(() => receiving(patient, DOCTOR), 20_000, 'the patient to receive the doctor');
  });

  afterAll(async () => {
    for (const peer of [doctor, patient]) await peer?.close().catch(() => undefined);
    await server?.close();
    await recorder?.stopAll();
    await aiWorker?.close();
    await engines?.close();
    await worker?.close();
    await jobs?.close();
    await queue?.close();
    await aiQueue?.close();
    redis?.disconnect();
    await redisServer?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const recordingState = (peer: TestPeer, state: string, from = 0) => peer.waitFor((m: ServerSignal) => m.type === 'recording' && m.recording.state === state, 15_000, from);
  const lineOf = (logs: { lines(): Record<string, unknown>[] }, msg: string, recording: string) =>
    waitFor(`"${msg}" for ${recording}`, () => logs.lines().find((line) => line.msg === msg && line.recording === recording), 30_000);

  let first = '';

  it('its stop’s trace goes into the finalise job, the worker’s lines, the purge and the AI job, and the AI worker’s lines', async () => {
    const requested = browserTrace('0af7651916cd43dd8448eb211c80319c');
    const stop = browserTrace('4bf92f3577b34da6a3ce929d0e0e4736');
    expect((await doctor.request({ type: 'recording', action: 'start', traceparent: requested.traceparent })).type).toBe('ack');
    expect((await doctor.request({ type: 'consent', granted: true })).type).toBe('ack');
    // The patient's consent starts it: an untraced message, so a trace starts there, in the line that says so.
    expect((await patient.request({ type: 'consent', granted: true })).type).toBe('ack');
    const recording = await recordingState(doctor, 'recording');
    first = (recording as Extract<ServerSignal, { type: 'recording' }>).recording.recordingId!;
    const started = await lineOf(rooms, 'recording started', first);
    expect(started.trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect(started.trace_id).not.toBe(requested.traceId);
    expect(started.parent_span_id).toBeUndefined();

    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect((await doctor.request({ type: 'recording', action: 'stop', traceparent: stop.traceparent })).type).toBe('ack');
    // The room's span of that message: logged, and the finalise job's parent.
    const stopped = await lineOf(rooms, 'recording stopped', first);
    expect(stopped).toMatchObject({ trace_id: stop.traceId, parent_span_id: stop.span, reason: 'requested' });
    const ids = { clinic: CLINIC, consult: CONSULT, recording: first };
    const finalise = await waitFor('the finalise job', () => queue.getJob(finaliseJobId(ids)));
    expect(addedWith(finalise)).toEqual({ traceId: stop.traceId, span: stopped.span_id });

    // The recordings worker's attempt: a span of that trace, which the jobs it adds carry on.
    const finalised = await lineOf(recordings, 'recording finalised', first);
    expect(finalised).toMatchObject({ trace_id: stop.traceId, parent_span_id: stopped.span_id });
    expect((await getRecording(redis, CLINIC, first))?.status).toBe('final');
    const purge = await queue.getJob(purgeJobId(ids));
    expect(await purge?.getState()).toBe('delayed');
    expect(addedWith(purge)).toEqual({ traceId: stop.traceId, span: finalised.span_id });
    const transcription = await waitFor('the AI job', () => aiQueue.getJob(aiRecordingJobId(ids)));
    expect(addedWith(transcription)).toEqual({ traceId: stop.traceId, span: finalised.span_id });

    // The AI worker's lines for that job continue it.
    const transcribed = await lineOf(ai, 'recording transcribed', first);
    expect(transcribed).toMatchObject({ job: aiRecordingJobId(ids), trace_id: stop.traceId, parent_span_id: finalised.span_id });
    const aiLines = ai.lines().filter((line) => line.job === aiRecordingJobId(ids));
    for (const line of aiLines) expect(line).toMatchObject({ trace_id: stop.traceId });
  });

  it('a stop no traced message caused starts a trace where it happens: logged, and carried by the finalise job', async () => {
    const again = browserTrace('c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6');
    const from = doctor.messages.length;
    expect((await doctor.request({ type: 'recording', action: 'start', traceparent: again.traceparent })).type).toBe('ack');
    const recording = (await recordingState(doctor, 'recording', from)) as Extract<ServerSignal, { type: 'recording' }>;
    const second = recording.recording.recordingId!;
    expect(second).not.toBe(first);
    // Everyone had consented: the request itself started it.
    expect(await lineOf(rooms, 'recording started', second)).toMatchObject({ trace_id: again.traceId, parent_span_id: again.span });

    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect((await patient.request({ type: 'consent', granted: false })).type).toBe('ack');
    const stopped = await lineOf(rooms, 'recording stopped', second);
    expect(stopped).toMatchObject({ reason: 'consent-withdrawn' });
    expect(stopped.trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect(stopped.trace_id).not.toBe(again.traceId);
    expect(stopped.parent_span_id).toBeUndefined();
    const finalise = await waitFor('the finalise job', () => queue.getJob(finaliseJobId({ clinic: CLINIC, consult: CONSULT, recording: second })));
    expect(addedWith(finalise)).toEqual({ traceId: stopped.trace_id, span: stopped.span_id });
    expect(await lineOf(recordings, 'recording finalised', second)).toMatchObject({ trace_id: stopped.trace_id, parent_span_id: stopped.span_id });
  });

  it('the hub ending the consultation stops the recording in the trace of the action that ended it', async () => {
    const from = doctor.messages.length;
    expect((await patient.request({ type: 'consent', granted: true })).type).toBe('ack');
    expect((await doctor.request({ type: 'recording', action: 'start' })).type).toBe('ack');
    const recording = (await recordingState(doctor, 'recording', from)) as Extract<ServerSignal, { type: 'recording' }>;
    const third = recording.recording.recordingId!;
    await new Promise((resolve) => setTimeout(resolve, 1_000));

    // What the hub's end-consult script publishes, with the doctor's consult:end span as the parent.
    const hub = browserTrace('d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9');
    const control: ConsultControlMessage = { consult: CONSULT, action: 'end', ticket: 't-trace', at: Date.now(), traceparent: hub.traceparent };
    await redis.spublish(consultControlChannel(CLINIC), JSON.stringify(control));
    const stopped = await lineOf(rooms, 'recording stopped', third);
    expect(stopped).toMatchObject({ trace_id: hub.traceId, parent_span_id: hub.span });
    const finalise = await waitFor('the finalise job', () => queue.getJob(finaliseJobId({ clinic: CLINIC, consult: CONSULT, recording: third })));
    expect(addedWith(finalise)).toEqual({ traceId: hub.traceId, span: stopped.span_id });
  });
});
