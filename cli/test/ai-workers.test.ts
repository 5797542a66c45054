import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AI_WORKERS_KEY, JOB_QUEUES, JOB_QUEUE_PREFIX, WEBHOOK_QUEUE_NAME, WEBHOOK_QUEUE_PREFIX, type OpsWorkers } from '@clinic-hub/protocol';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import { loadAiConfig } from '@clinic-hub/ai-workers';
import { startAiWorker, type RunningAiWorker } from '@clinic-hub/ai-workers';
import { ModelHub } from '@clinic-hub/test-kit/model-hub';
import { tempDir } from '@clinic-hub/test-kit/tmp';
import { fixtureWorkerEnv, writeFixtureModels } from '@clinic-hub/test-kit/worker-fixtures';
import { writeEmotionFixture } from '@clinic-hub/test-kit/fixture-models';
import { cleanEnv, runCli } from '@clinic-hub/test-kit/run-cli';

/** `clinic workers` against a real hub and Redis with a running AI worker; `clinic models` against a local model hub. */
const tmp = tempDir();
let redisServer: TestRedis;
let redis: Redis;
let worker: RunningAiWorker;
let hub: ModelHub;
let hubNode: HubNodeProcess;
const REV = '0123456789abcdef0123456789abcdef01234567';

beforeAll(async () => {
  redisServer = await startTestRedis();
  redis = new Redis(redisServer.url);
  writeFixtureModels(join(tmp.dir, 'models'));
  worker = await startAiWorker(loadAiConfig(fixtureWorkerEnv(redisServer.url, join(tmp.dir, 'models'), { AI_WORKER_ID: 'cli-test-worker', AI_MAX_SESSIONS: '3' })), { logger: pino({ level: 'silent' }) });
  hub = await new ModelHub(join(tmp.dir, 'hub')).start();
  hubNode = await startHubProcess({ redisUrl: redisServer.url, nodeId: 'cli-workers' });
});
afterAll(async () => {
  await worker?.close();
  await hub?.stop();
  await hubNode?.stop();
  redis?.disconnect();
  await redisServer?.cleanup();
  tmp.cleanup();
});

describe('clinic workers', () => {
  it('lists the live AI workers and the queue depths through the hub (table and --json)', async () => {
    const recordings = new Queue(JOB_QUEUES.recordings, { connection: redis, prefix: JOB_QUEUE_PREFIX });
    await recordings.add('finalise', { any: 1 }, { delay: 60_000 });
    await recordings.close();
    // The hub's webhook deliveries are a queue too; the hub node runs their worker.
    const webhooks = new Queue(WEBHOOK_QUEUE_NAME, { connection: redis, prefix: WEBHOOK_QUEUE_PREFIX });
    await webhooks.add('ticket.called', { any: 1 }, { delay: 60_000 });
    await webhooks.close();
    // A worker that died without saying so: its id is still in the set, its heartbeat hash has expired.
    await redis.sadd(AI_WORKERS_KEY, 'dead-worker');
    const env = cleanEnv({ CLINIC_URL: hubNode.url, CLINIC_TOKEN: await tokenFor('staff') });
    const json = await runCli(['workers', '--json'], { env });
    expect(json.code, json.stderr).toBe(0);
    const view = json.json<OpsWorkers>();
    expect(view.workers).toEqual([expect.objectContaining({ id: 'cli-test-worker', concurrency: 3, sessions: 0, stt: 'local-ctc', emotion: 'local-emotion/ser-fixture', stopping: false })]);
    expect(view.queues.map((q) => q.queue)).toEqual(['ai-sessions', 'ai-recordings', 'recordings', 'notifications', 'webhooks']);
    expect(view.queues.find((q) => q.queue === 'webhooks')).toMatchObject({ counts: expect.objectContaining({ delayed: 1 }), workers: expect.any(Number) });
    expect(view.queues.find((q) => q.queue === 'webhooks')!.workers).toBeGreaterThanOrEqual(1);
    expect(view.queues.find((q) => q.queue === 'recordings')!.counts.delayed).toBe(1);
    expect(view.queues.find((q) => q.queue === 'ai-sessions')!.workers).toBeGreaterThanOrEqual(1);
    expect(await redis.sismember(AI_WORKERS_KEY, 'dead-worker')).toBe(0);
    const text = await runCli(['workers'], { env });
    expect(text.code).toBe(0);
    console.log(text.stdout);
    expect(text.stdout).toMatch(/cli-test-worker\s+\S+:\d+\s+0\/3\s+0\s+local-ctc\s+local-emotion\/ser-fixture/);
    expect(text.stdout).toMatch(/recordings\s+0\s+0\s+1\s+0\s+0/);
    expect(text.stdout).toMatch(/webhooks\s+0\s+0\s+1\s+0\s+0\s+[1-9]/);
  });

  it('needs an ops token; says what to do when the hub is not there', async () => {
    const asDisplay = await runCli(['workers', '--json'], { env: cleanEnv({ CLINIC_URL: hubNode.url, CLINIC_TOKEN: await tokenFor('display') }) });
    expect(asDisplay.code).toBe(3);
    expect(asDisplay.error().code).toBe('AUTH_FORBIDDEN');
    const none = await runCli(['workers', '--json'], { env: cleanEnv({ CLINIC_URL: undefined, CLINIC_TOKEN: undefined }) });
    expect(none.code).toBe(3);
    expect(none.error()).toMatchObject({ code: 'NOT_CONFIGURED', hint: expect.stringMatching(/clinic login|CLINIC_URL/) });
    const down = await runCli(['workers'], { env: cleanEnv({ CLINIC_URL: 'http://127.0.0.1:1', CLINIC_TOKEN: await tokenFor('staff') }) });
    expect(down.code).toBe(69);
    expect(down.stderr).toMatch(/HUB_UNREACHABLE/);
  });
});

describe('clinic models', () => {
  it('pull: downloads with progress and checksums; list shows it installed; a tampered file is refused', async () => {
    const source = writeEmotionFixture(join(tmp.dir, 'src-ser'));
    const entry = hub.publish('clinic/ser-fixture', REV, source.dir, 'audio-classification');
    const manifest = join(tmp.dir, 'manifest.json');
    writeFileSync(manifest, JSON.stringify({ models: { 'ser-test': entry, 'not-pinned': { ...entry, revision: null } } }));
    const modelsDir = join(tmp.dir, 'pulled');
    const env = cleanEnv({ AI_MODELS_MANIFEST: manifest, AI_MODELS_DIR: modelsDir, AI_MODELS_HUB_URL: hub.url });
    const pulled = await runCli(['models', 'pull', 'ser-test'], { env });
    expect(pulled.code).toBe(0);
    expect(pulled.stderr).toMatch(/\[1\/3\] config\.json .* sha256 ok/);
    expect(pulled.stderr).toMatch(/\[3\/3\] preprocessor_config\.json .* sha256 ok/);
    expect(pulled.stdout).toMatch(/Pulled ser-test: 3 files/);
    const list = await runCli(['models', 'list', '--json'], { env });
    expect(list.json<{ models: { name: string; status: string }[] }>().models).toEqual([
      expect.objectContaining({ name: 'ser-test', status: 'installed' }),
      expect.objectContaining({ name: 'not-pinned', status: 'unpinned' }),
    ]);
    const table = await runCli(['models'], { env });
    expect(table.stdout).toMatch(/ser-test\s+installed\s+audio-classification/);
    const again = await runCli(['models', 'pull', 'ser-test', '--json'], { env });
    expect(again.json<{ status: string }>().status).toBe('up-to-date');
    // The hub now serves other bytes under the pinned revision.
    writeFileSync(join(hub.root, 'clinic/ser-fixture', REV, 'config.json'), '{"id2label":{"0":"x"}}');
    const mismatch = await runCli(['models', 'pull', 'ser-test', '--force', '--json'], { env });
    expect(mismatch.code).toBe(1);
    expect(mismatch.error()).toMatchObject({ code: 'AI_MODEL_CHECKSUM_MISMATCH', detail: expect.stringMatching(/config\.json/) });
    const unpinned = await runCli(['models', 'pull', 'not-pinned'], { env });
    expect(unpinned.code).toBe(5);
    expect(unpinned.stderr).toMatch(/AI_MODEL_UNPINNED.*\n.*detail:.*its revision/);
    const unknown = await runCli(['models', 'pull', 'nope', '--json'], { env });
    expect(unknown.code).toBe(4);
    expect(unknown.error().code).toBe('AI_MODEL_UNKNOWN');
    const sha = createHash('sha256').update('x').digest('hex');
    mkdirSync(join(hub.root, 'clinic/partial', REV), { recursive: true });
    writeFileSync(manifest, JSON.stringify({ models: { partial: { ...entry, repo: 'clinic/partial', files: [{ path: 'model.onnx', sha256: sha }] } } }));
    const missing = await runCli(['models', 'pull', 'partial', '--json'], { env });
    expect(missing.code).toBe(69);
    expect(missing.error()).toMatchObject({ code: 'AI_MODEL_DOWNLOAD_FAILED', detail: expect.stringMatching(/model\.onnx: the hub answered 404/) });
  }, 90_000);
});
