import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadAiConfig } from '../src/config.js';
import { tempDir } from '@clinic-hub/test-kit/tmp';

const tmp = tempDir();
afterAll(() => tmp.cleanup());
const base = { REDIS_URL: 'redis://127.0.0.1:6379', AI_STT_MODEL_JA: 'wav2vec2-ja', AI_EMOTION_MODEL: 'ser-ja' };

const problems = (env: Record<string, string>) => {
  try {
    loadAiConfig(env, '/srv/clinic');
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('configuration accepted');
};

describe('AI worker configuration', () => {
  it('defaults: local engine, models under var/models of the working directory, four sessions', () => {
    const config = loadAiConfig(base, '/srv/clinic');
    expect(config.models.dir).toBe('/srv/clinic/var/models');
    expect(config.stt).toEqual({ engine: 'local', models: { ja: 'wav2vec2-ja', en: undefined }, partialIntervalMs: 500 });
    expect(config.emotion).toEqual({ model: 'ser-ja' });
    expect(config.jobs.maxSessions).toBe(4);
    expect(config.metrics).toBeNull();
    expect(loadAiConfig({ ...base, AI_EMOTION_MODEL: 'off' }).emotion).toBeNull();
  });

  it('runs on a Redis Cluster (REDIS_CLUSTER_NODES), as on one Redis or Sentinel', () => {
    const { REDIS_URL: _one, ...models } = base;
    expect(loadAiConfig({ ...models, REDIS_CLUSTER_NODES: 'r1:7000,r2:7001' }).redis).toEqual({ mode: 'cluster', nodes: [{ host: 'r1', port: 7000 }, { host: 'r2', port: 7001 }] });
  });

  it('names each bad variable, never echoing a secret', () => {
    const message = problems({ REDIS_URL: 'http://x', AI_MAX_SESSIONS: 'many', AI_VAD_THRESHOLD: '2', AI_STT_ENGINE: 'whisper', DEEPGRAM_API_KEY: 'secret-key' });
    expect(message).toMatch(/REDIS_URL: must start with redis:\/\//);
    expect(message).toMatch(/AI_MAX_SESSIONS: .*\(got "many"\)/);
    expect(message).toMatch(/AI_VAD_THRESHOLD: /);
    expect(message).toMatch(/AI_STT_ENGINE: /);
    expect(message).not.toMatch(/secret-key/);
    expect(problems({ REDIS_URL: 'redis://x' })).toMatch(/AI_STT_MODEL_JA \/ AI_STT_MODEL_EN: the local engine needs at least one/);
    expect(problems({ ...base, AI_STT_ENGINE: 'deepgram' })).toMatch(/DEEPGRAM_API_KEY: required with AI_STT_ENGINE=deepgram/);
    expect(problems({ REDIS_URL: 'redis://x', AI_STT_MODEL_EN: 'Bad Name', AI_EMOTION_MODEL: 'off' })).toMatch(/AI_STT_MODEL_EN: /);
    expect(problems({ REDIS_URL: 'redis://x', AI_STT_MODEL_EN: 'en' })).toMatch(/AI_EMOTION_MODEL: a model name in AI_MODELS_DIR, or `off`/);
  });

  it('reads secrets from NAME_FILE', () => {
    const file = join(tmp.dir, 'deepgram');
    writeFileSync(file, 'dg-key-from-file\n');
    const config = loadAiConfig({ ...base, AI_STT_ENGINE: 'deepgram', DEEPGRAM_API_KEY_FILE: file });
    expect(config.stt).toMatchObject({ engine: 'deepgram', apiKey: 'dg-key-from-file', url: 'wss://api.deepgram.com', model: 'nova-2' });
    expect(problems({ ...base, DEEPGRAM_API_KEY: 'a', DEEPGRAM_API_KEY_FILE: file })).toMatch(/DEEPGRAM_API_KEY_FILE: set DEEPGRAM_API_KEY or DEEPGRAM_API_KEY_FILE, not both/);
  });
});
