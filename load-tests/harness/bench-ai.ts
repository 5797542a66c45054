/**
 * `npm run bench:ai`: the AI workers' latency, measured end to end.
 *
 * A private redis-server, an AI worker process (ai-workers/src/main.ts, as
 * `npm run ai:worker` runs it) per engine, and `--sessions` consultations at
 * once, each two participants (doctor, patient) taking turns with espeak-ng
 * speech (Japanese in kana and English, alternately per consultation),
 * written to the consultations' audio streams in real time exactly as the
 * media-server's audio tap writes them. Results are read where the hub reads
 * them: the clinic's AI channel. Per engine:
 *
 *   speech start → first partial; speech end → final transcript; speech end
 *   → emotion scores (p50/p95/p99), every spoken turn accounted for, the VAD's
 *   cost per second of audio, the worker's CPU and peak RSS.
 *
 * Engines: `local` — the CTC and emotion fixture models the test suite
 * writes (ai-workers/test/support/fixture-models.ts): small graphs with the
 * real exports' inputs and outputs, so the figures are the pipeline's cost,
 * not a real model's (a wav2vec2-base model costs far more per second of
 * audio); `deepgram` — the real @deepgram/sdk against the local server that
 * speaks Deepgram's live protocol (ai-workers/test/support/deepgram-server.ts),
 * so a real Deepgram round trip comes on top. Budgets (DESIGN.md): partial
 * within 1 s of speech, emotion within 2 s of an utterance's end.
 *
 * Writes load-tests/results/ai.json.
 *
 *   npm run bench:ai                                     (4 consultations × 30 s, local and deepgram)
 *   npm run bench:ai -- --sessions 8 --seconds 60 --engines local
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JOB_QUEUES, JOB_QUEUE_PREFIX, consultAiChannel, consultKeys, type AiEmotion, type AiResultMessage, type AiTranscript, type ConsultLanguage } from '@clinic-hub/protocol';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { freePort, startRedisServer } from '@clinic-hub/platform/redis-server';
import { SileroVad } from '@clinic-hub/ai-workers/vad';
import { detectSpeech } from '@clinic-hub/ai-workers/vad';
import { conversation, feedConversation, type Track } from '@clinic-hub/test-kit/audio-tap';
import { DeepgramServer } from '@clinic-hub/test-kit/deepgram-server';
import { espeakSpeech } from '@clinic-hub/test-kit/speech';
import { writeFixtureModels } from '@clinic-hub/test-kit/worker-fixtures';
import { benchCommandLine, reportedOptions, runBenchCli } from './bench-cli.js';
import { REPO_ROOT, WATCHDOG } from './hub-process.js';
import { ProcessWatcher } from './proc-stats.js';
import { cell, figures, machine, machineLine, renderTable, round, verdict, type LatencyFigures, type MachineInfo } from './report.js';
import { cpuPercent, machineLoad, type MachineLoad } from './resource-figures.js';
import type { Resources } from './resources.js';
import { summarize } from './stats.js';
import { now, sleep } from './time.js';

const ENGINES = ['local', 'deepgram'] as const;
type Engine = (typeof ENGINES)[number];

const AI_OPTIONS = benchCommandLine({
  name: 'bench:ai',
  report: 'load-tests/results/ai.json',
  profiles: 'the AI worker processes',
  options: {
    sessions: { kind: 'integer', default: 4, min: 1, max: 64, help: 'consultations at once, two participants each' },
    seconds: { kind: 'number', arg: 'S', default: 30, min: 5, max: 600, help: 'seconds of conversation per consultation, fed in real time' },
    engines: { kind: 'choice', list: true, choices: ENGINES, default: ENGINES, help: 'speech-to-text engines, measured one after the other' },
    /** Stand-in for network and model time. */
    deepgramLatencyMs: { flag: 'deepgram-latency', kind: 'number', arg: 'MS', default: 0, min: 0, max: 10_000, help: 'the local Deepgram server waits this long before each result' },
  },
});

type AiBenchOptions = typeof AI_OPTIONS.defaults;

const BUDGET = { first_partial_ms: 1000, emotion_ms: 2000 };

const LINES: Record<ConsultLanguage, string[]> = {
  ja: ['きょうは どうされましたか', 'きのうから ねつが あります', 'せきは でますか', 'よるに すこし でます', 'くすりを だしておきますね', 'ありがとうございます'],
  en: ['Good morning, what brings you in today?', 'I have had a fever since yesterday.', 'Do you have a cough as well?', 'A little, mostly at night.', 'I will prescribe something for that.', 'Thank you, doctor.'],
};

export interface EngineFigures {
  engine: Engine;
  stt: string;
  sessions: number;
  audio_seconds_per_session: number;
  turns: number;
  /** Turns that got neither a final nor emotion scores: audio lost somewhere. */
  turns_missing: number;
  finals: number;
  partials: number;
  emotions: number;
  speech_start_to_first_partial: LatencyFigures;
  /** How old the audio a partial covers is when it arrives. */
  partial_lag: LatencyFigures;
  speech_end_to_final: LatencyFigures;
  speech_end_to_emotion: LatencyFigures;
  partials_dropped: number;
  /** Wall time the worker's streams waited on Silero VAD per second of audio, from its metrics (with every stream running at once). */
  vad_ms_per_audio_second: number | null;
  /** cpu_ms_per_audio_second: the worker's whole CPU (VAD, engines, Redis, Node) per second of one participant's audio. */
  worker: { pid: number; cpu_percent: number | null; peak_rss_mb: number | null; cpu_ms_per_audio_second: number | null };
  coordinator_cpu_percent: number | null;
  redis_cpu_percent: number | null;
  load: MachineLoad;
  budget: { first_partial_p95_ms: number; emotion_p95_ms: number; first_partial_met: boolean | null; emotion_met: boolean | null };
}

export interface AiBenchReport {
  ok: boolean;
  at: string;
  machine: MachineInfo;
  config: Omit<AiBenchOptions, 'out' | 'profileDir'>;
  /** Silero VAD alone in this process on the benchmark's audio: ms per second of audio. */
  vad_standalone_ms_per_audio_second: number | null;
  engines: EngineFigures[];
  errors: string[];
}

interface Received {
  at: number;
  message: AiResultMessage;
}

/** A session's conversation: doctor and patient take turns with 1 s between them until `seconds` are filled. */
function script(language: ConsultLanguage, seconds: number, offset: number): { tracks: Track[]; turns: { participant: string; start: number; end: number }[] } {
  const turns: { participant: string; role: 'doctor' | 'patient'; at: number; speech: Float32Array }[] = [];
  let at = 0.5;
  for (let i = offset; ; i++) {
    const speech = espeakSpeech(LINES[language][i % LINES[language].length]!, { voice: language });
    if (at + speech.length / 16000 + 0.8 > seconds) break;
    const doctor = i % 2 === 0;
    turns.push({ participant: doctor ? 'bench-doctor' : 'bench-patient', role: doctor ? 'doctor' : 'patient', at, speech });
    at += speech.length / 16000 + 1;
  }
  return { tracks: conversation(seconds, turns), turns: turns.map((t) => ({ participant: t.participant, start: t.at * 1000, end: (t.at + t.speech.length / 16000) * 1000 })) };
}

async function scrape(port: number): Promise<string> {
  try {
    return await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  } catch {
    return '';
  }
}

const metricValue = (text: string, name: string) => {
  const line = text.split('\n').find((l) => l.startsWith(name) && !l.startsWith(`${name}_`));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : NaN;
};

async function runEngine(engine: Engine, options: AiBenchOptions, env: { redisUrl: string; redisPid: number; modelsDir: string }, log: (line: string) => void, resources: Resources, errors: string[]): Promise<EngineFigures> {
  let deepgram: DeepgramServer | null = null;
  const workerEnv: Record<string, string> = {
    REDIS_URL: env.redisUrl,
    AI_WORKER_ID: `bench-${engine}`,
    AI_MODELS_DIR: env.modelsDir,
    AI_EMOTION_MODEL: 'ser-fixture',
    AI_MAX_SESSIONS: String(options.sessions),
    AI_SESSION_END_GRACE_MS: '200',
    LOG_LEVEL: 'info',
  };
  if (engine === 'local') Object.assign(workerEnv, { AI_STT_ENGINE: 'local', AI_STT_MODEL_EN: 'ctc-fixture-en', AI_STT_MODEL_JA: 'ctc-fixture-ja' });
  else {
    deepgram = await new DeepgramServer({ apiKey: 'bench-key', latencyMs: options.deepgramLatencyMs, transcribe: (s) => Array.from({ length: Math.max(1, Math.round(s.length / 4000)) }, () => 'word') }).start();
    resources.add(`local Deepgram server (${engine})`, () => deepgram!.stop());
    Object.assign(workerEnv, { AI_STT_ENGINE: 'deepgram', DEEPGRAM_API_KEY: 'bench-key', DEEPGRAM_URL: deepgram.url });
  }
  const metricsPort = await freePort();
  workerEnv.AI_METRICS_PORT = String(metricsPort);
  workerEnv.AI_METRICS_HOST = '127.0.0.1';
  const nodeArgs = options.profileDir ? ['--cpu-prof', '--cpu-prof-dir', join(options.profileDir, `ai-worker-${engine}`)] : [];
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', '--import', WATCHDOG, resolve(REPO_ROOT, 'ai-workers/src/main.ts')], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...workerEnv },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-20_000)));
  child.stderr!.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-20_000)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stopWorker = resources.add(`AI worker (${engine})`, async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
  });
  const readyBy = Date.now() + 60_000;
  while (!output.includes('AI worker ready')) {
    if (child.exitCode !== null || Date.now() > readyBy) throw new Error(`AI worker (${engine}) did not start: ${output}`);
    await sleep(100);
  }
  log(`[${engine}] AI worker pid ${child.pid} ready`);

  const redis = new Redis(env.redisUrl);
  const subscriber = new Redis(env.redisUrl);
  const received: Received[] = [];
  // Sharded pub/sub, as the hub follows it: the bench clinic's channel by name.
  await subscriber.ssubscribe(consultAiChannel('bench'));
  subscriber.on('smessage', (_channel: string, message: string) => received.push({ at: now(), message: JSON.parse(message) as AiResultMessage }));
  const queue = new Queue(JOB_QUEUES.aiSessions, { connection: redis, prefix: JOB_QUEUE_PREFIX });
  const sessions = Array.from({ length: options.sessions }, (_, i) => {
    const language: ConsultLanguage = i % 2 === 0 ? 'ja' : 'en';
    return { consult: `bench-${engine}-${i}-${Date.now().toString(36)}`, language, ...script(language, options.seconds, i) };
  });
  for (const s of sessions) await queue.add('session', { clinic: 'bench', consult: s.consult, language: s.language }, { jobId: s.consult });
  const watcher = new ProcessWatcher([child.pid!, process.pid, env.redisPid]);
  const metricsBefore = await scrape(metricsPort);
  const from = watcher.mark();
  log(`[${engine}] ${options.sessions} consultations × ${options.seconds} s of audio, in real time…`);
  const t0 = Date.now();
  await Promise.all(sessions.map((s) => feedConversation(redis, consultKeys('bench', s.consult).audio, s.tracks, { t0, speed: 1 })));
  const deadline = Date.now() + 60_000;
  for (;;) {
    const done = await Promise.all(sessions.map((s) => redis.hget(consultKeys('bench', s.consult).aiState, 'done')));
    if (done.every((d) => d === '1')) break;
    if (Date.now() > deadline) {
      errors.push(`${engine}: ${done.filter((d) => d !== '1').length} sessions did not end within 60 s of their audio`);
      break;
    }
    await sleep(100);
  }
  const to = watcher.mark();
  const metricsAfter = await scrape(metricsPort);
  watcher.stop();
  await queue.close();
  subscriber.disconnect();
  redis.disconnect();
  await stopWorker();
  if (child.exitCode !== 0 && child.exitCode !== null) errors.push(`${engine}: the worker exited ${child.exitCode}`);

  const consults = new Set(sessions.map((s) => s.consult));
  const mine = received.filter((r) => consults.has(r.message.payload.consult));
  const transcripts = mine.filter((r): r is Received & { message: { type: 'transcript'; payload: AiTranscript } } => r.message.type === 'transcript');
  const finals = transcripts.filter((r) => r.message.payload.kind === 'final');
  const partials = transcripts.filter((r) => r.message.payload.kind === 'partial');
  const emotions = mine.filter((r): r is Received & { message: { type: 'emotion'; payload: AiEmotion } } => r.message.type === 'emotion');
  const firstPartial = new Map<string, Received>();
  for (const p of partials) if (!firstPartial.has(p.message.payload.utterance)) firstPartial.set(p.message.payload.utterance, p);
  let turns = 0;
  let missing = 0;
  for (const s of sessions) {
    for (const turn of s.turns) {
      turns++;
      const start = t0 + turn.start;
      const end = t0 + turn.end;
      const heard = [...finals, ...emotions].some((r) => r.message.payload.consult === s.consult && r.message.payload.participant === turn.participant && r.message.payload.startMs < end && r.message.payload.endMs > start);
      if (!heard) missing++;
    }
  }
  if (missing > 0) errors.push(`${engine}: ${missing} of ${turns} turns got no final and no emotion scores`);
  const audio = metricValue(metricsAfter, 'clinic_ai_audio_seconds_total') - metricValue(metricsBefore, 'clinic_ai_audio_seconds_total');
  const vad = metricValue(metricsAfter, 'clinic_ai_vad_seconds_total') - metricValue(metricsBefore, 'clinic_ai_vad_seconds_total');
  const dropped = metricValue(metricsAfter, 'clinic_ai_partials_dropped_total') - (metricValue(metricsBefore, 'clinic_ai_partials_dropped_total') || 0);
  const firstPartialFigures = figures(summarize([...firstPartial.values()].map((p) => p.at - p.message.payload.startMs)));
  const emotionFigures = figures(summarize(emotions.map((e) => e.at - e.message.payload.endMs)));
  return {
    engine,
    stt: engine === 'local' ? 'local-ctc, fixture models' : `deepgram/${finals[0]?.message.payload.engine.split('/')[1] ?? '?'}, local server`,
    sessions: options.sessions,
    audio_seconds_per_session: options.seconds,
    turns,
    turns_missing: missing,
    finals: finals.length,
    partials: partials.length,
    emotions: emotions.length,
    speech_start_to_first_partial: firstPartialFigures,
    partial_lag: figures(summarize(partials.map((p) => p.at - p.message.payload.endMs))),
    speech_end_to_final: figures(summarize(finals.map((f) => f.at - f.message.payload.endMs))),
    speech_end_to_emotion: emotionFigures,
    partials_dropped: Number.isFinite(dropped) ? dropped : 0,
    vad_ms_per_audio_second: audio > 0 ? round((vad * 1000) / audio, 2) : null,
    worker: {
      pid: child.pid!,
      cpu_percent: cpuPercent(child.pid!, from, to),
      peak_rss_mb: round(watcher.peakRssMb(child.pid!)),
      cpu_ms_per_audio_second: audio > 0 ? round(((ProcessWatcher.cpuPercent(child.pid!, from, to) / 100) * ((to.at - from.at) / 1000) * 1000) / audio, 1) : null,
    },
    coordinator_cpu_percent: cpuPercent(process.pid, from, to),
    redis_cpu_percent: cpuPercent(env.redisPid, from, to),
    load: machineLoad(from, to, [child.pid!, process.pid, env.redisPid]),
    budget: {
      first_partial_p95_ms: BUDGET.first_partial_ms,
      emotion_p95_ms: BUDGET.emotion_ms,
      first_partial_met: firstPartialFigures.p95_ms === null ? null : firstPartialFigures.p95_ms <= BUDGET.first_partial_ms,
      emotion_met: emotionFigures.p95_ms === null ? null : emotionFigures.p95_ms <= BUDGET.emotion_ms,
    },
  };
}

export async function runAiBench(options: AiBenchOptions, log: (line: string) => void, resources: Resources): Promise<AiBenchReport> {
  const dir = mkdtempSync(join(tmpdir(), 'clinic-bench-ai-'));
  resources.add('temporary directory', async () => rmSync(dir, { recursive: true, force: true }));
  const redis = await startRedisServer({ dir: join(dir, 'redis') });
  resources.add('redis-server', () => redis.stop());
  log(`redis-server pid ${redis.process.pid} on ${redis.url}`);
  const modelsDir = join(dir, 'models');
  writeFixtureModels(modelsDir);
  const errors: string[] = [];

  // The VAD alone, in this process, on the benchmark's own speech.
  const vad = await SileroVad.load();
  const sample = script('ja', 30, 0).tracks[0]!.samples;
  const runs: number[] = [];
  for (let i = 0; i < 4; i++) {
    const started = now();
    await detectSpeech(vad, sample);
    runs.push((now() - started) / (sample.length / 16000));
  }
  // The first run warms the session up; the median of the others.
  const standalone = round(summarize(runs.slice(1)).p50, 2);
  await vad.release();

  const engines: EngineFigures[] = [];
  for (const engine of options.engines) engines.push(await runEngine(engine, options, { redisUrl: redis.url, redisPid: redis.process.pid!, modelsDir }, log, resources, errors));
  return {
    ok: errors.length === 0,
    at: new Date().toISOString(),
    machine: machine(),
    config: reportedOptions(options),
    vad_standalone_ms_per_audio_second: standalone,
    engines,
    errors,
  };
}

export function formatTable(report: AiBenchReport): string {
  const rows = (label: string, pick: (e: EngineFigures) => string) => [label, ...report.engines.map(pick)];
  const lat = (f: LatencyFigures) => `${cell(f.p50_ms)} / ${cell(f.p95_ms)} / ${cell(f.p99_ms)}`;
  const lines = renderTable(
    ['', ...report.engines.map((e) => `${e.engine} (${e.stt})`)],
    [
      rows('speech start → first partial p50/p95/p99 (ms)', (e) => lat(e.speech_start_to_first_partial)),
      rows('partial lag behind the audio p50/p95/p99 (ms)', (e) => lat(e.partial_lag)),
      rows('speech end → final p50/p95/p99 (ms)', (e) => lat(e.speech_end_to_final)),
      rows('speech end → emotion p50/p95/p99 (ms)', (e) => lat(e.speech_end_to_emotion)),
      rows('turns / without results', (e) => `${e.turns} / ${e.turns_missing}`),
      rows('finals / partials / emotions', (e) => `${e.finals} / ${e.partials} / ${e.emotions}`),
      rows('partials dropped (behind)', (e) => cell(e.partials_dropped)),
      rows('VAD wall time per audio second, in the worker (ms)', (e) => cell(e.vad_ms_per_audio_second)),
      rows('worker CPU (% of a core) / peak RSS (MB)', (e) => `${cell(e.worker.cpu_percent)} / ${cell(e.worker.peak_rss_mb)}`),
      rows('worker CPU per second of a participant\'s audio (ms)', (e) => cell(e.worker.cpu_ms_per_audio_second)),
      rows('machine busy % / other programs (% of a core)', (e) => `${cell(e.load.machine_busy_percent)} / ${cell(e.load.other_cpu_percent)}`),
    ],
  );
  return [
    `${report.config.sessions} consultations at once, ${report.config.seconds} s of two-person conversation each, per engine`,
    ...lines,
    '',
    ...report.engines.map(
      (e) => `${e.engine}: partial within ${e.budget.first_partial_p95_ms} ms of speech (p95): ${verdict(e.budget.first_partial_met)}; emotion within ${e.budget.emotion_p95_ms} ms of the end (p95): ${verdict(e.budget.emotion_met)}`,
    ),
    `Silero VAD alone: ${cell(report.vad_standalone_ms_per_audio_second)} ms per second of audio`,
    'local = fixture models (the pipeline\'s own cost, not a real model\'s); deepgram = the real SDK against a local server (add a real round trip)',
    machineLine(report.machine),
    ...(report.errors.length ? ['', 'errors:', ...report.errors.map((e) => `  ${e}`)] : []),
  ].join('\n');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  void runBenchCli({ commandLine: AI_OPTIONS, run: runAiBench, format: formatTable });
}
