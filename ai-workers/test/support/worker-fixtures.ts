import { join } from 'node:path';
import { ENGLISH_VOCAB, JAPANESE_VOCAB, writeCtcFixture, writeEmotionFixture } from './fixture-models.js';

/** A models directory with the fixture models under the names a worker is configured with. */
export function writeFixtureModels(modelsDir: string): void {
  writeCtcFixture(join(modelsDir, 'ctc-fixture-en'), { vocab: ENGLISH_VOCAB });
  writeCtcFixture(join(modelsDir, 'ctc-fixture-ja'), { vocab: JAPANESE_VOCAB });
  writeEmotionFixture(join(modelsDir, 'ser-fixture'));
}

/** Environment for a worker using the fixture models (short locks and grace so tests stay short). */
export function fixtureWorkerEnv(redisUrl: string, modelsDir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    REDIS_URL: redisUrl,
    AI_MODELS_DIR: modelsDir,
    AI_STT_MODEL_EN: 'ctc-fixture-en',
    AI_STT_MODEL_JA: 'ctc-fixture-ja',
    AI_EMOTION_MODEL: 'ser-fixture',
    AI_SESSION_END_GRACE_MS: '300',
    AI_JOB_LOCK_MS: '2000',
    AI_STALLED_INTERVAL_MS: '1000',
    AI_PARTIAL_INTERVAL_MS: '400',
    LOG_LEVEL: 'silent',
    ...extra,
  };
}
