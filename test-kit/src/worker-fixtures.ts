import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { childNodeArgs, entryPoint } from './hub-node.js';
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

export interface AiWorkerProcess {
  child: ChildProcess;
  /** stdout and stderr so far. */
  output(): string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  /** SIGTERM (the worker hands its sessions back), SIGKILL if it has not exited 10 s later; resolves once it has. */
  stop(): Promise<void>;
}

/** `npm run ai:worker` as its own process, with this environment (fixtureWorkerEnv) on top of the test's. */
export function startAiWorkerProcess(env: Record<string, string>): AiWorkerProcess {
  const child = spawn(process.execPath, childNodeArgs(entryPoint('@clinic-hub/ai-workers/main')), {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  return { child, output: () => output, exited, stop };
}
