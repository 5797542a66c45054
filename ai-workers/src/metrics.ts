import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { collectProcessMetrics } from '@clinic-hub/platform/process';

const LATENCY_BUCKETS = [0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30];

/**
 * The AI worker's Prometheus metrics (AI_METRICS_PORT). Labels are engines,
 * stages, queues and codes only: never a consultation, a participant or text.
 */
export class AiMetrics {
  readonly registry = new Registry();
  /** Speech end (the utterance's last sample) → its final transcript published. */
  readonly finalLatency: Histogram<'engine'>;
  /** Speech start → the utterance's first partial published. */
  readonly firstPartialLatency: Histogram<'engine'>;
  /** Speech end → the utterance's emotion scores published. */
  readonly emotionLatency: Histogram<'engine'>;
  readonly utterances: Counter<'engine'>;
  readonly partialsDropped: Counter;
  readonly errors: Counter<'code'>;
  readonly audioSeconds: Counter;
  readonly vadSeconds: Counter;
  readonly sessionsActive: Gauge;
  /** How far behind the audio the worker is (the largest over its sessions). */
  readonly lagSeconds: Gauge;

  constructor(workerId: string, sources: { sessions(): number; lagSeconds(): number } = { sessions: () => 0, lagSeconds: () => 0 }) {
    this.registry.setDefaultLabels({ worker: workerId });
    const registers = [this.registry];
    this.finalLatency = new Histogram({ name: 'clinic_ai_final_latency_seconds', help: 'End of speech to its final transcript published, by engine', labelNames: ['engine'], buckets: LATENCY_BUCKETS, registers });
    this.firstPartialLatency = new Histogram({ name: 'clinic_ai_first_partial_latency_seconds', help: 'Start of speech to the first partial transcript published, by engine', labelNames: ['engine'], buckets: LATENCY_BUCKETS, registers });
    this.emotionLatency = new Histogram({ name: 'clinic_ai_emotion_latency_seconds', help: 'End of an utterance to its emotion scores published, by engine', labelNames: ['engine'], buckets: LATENCY_BUCKETS, registers });
    this.utterances = new Counter({ name: 'clinic_ai_utterances_total', help: 'Utterances transcribed, by engine', labelNames: ['engine'], registers });
    this.partialsDropped = new Counter({ name: 'clinic_ai_partials_dropped_total', help: 'Partial transcripts skipped because the worker was behind the audio (finals are never dropped)', registers });
    this.errors = new Counter({ name: 'clinic_ai_errors_total', help: 'Skipped audio entries, failed engine calls and failed jobs, by code', labelNames: ['code'], registers });
    this.audioSeconds = new Counter({ name: 'clinic_ai_audio_seconds_total', help: 'Seconds of participant audio processed', registers });
    this.vadSeconds = new Counter({ name: 'clinic_ai_vad_seconds_total', help: 'Seconds spent in voice activity detection', registers });
    this.sessionsActive = new Gauge({
      name: 'clinic_ai_sessions_active',
      help: 'Live consultation sessions this worker follows',
      registers,
      collect() {
        this.set(sources.sessions());
      },
    });
    this.lagSeconds = new Gauge({
      name: 'clinic_ai_audio_lag_seconds',
      help: 'How far behind the audio tap this worker is (largest over its sessions)',
      registers,
      collect() {
        this.set(sources.lagSeconds());
      },
    });
    collectProcessMetrics(this.registry);
  }

  /** Queue depth by queue and BullMQ state, read at scrape time (at most 2 s; the last good counts otherwise). */
  addQueueDepth(read: () => Promise<{ queue: string; counts: Record<string, number> }[]>): void {
    new Gauge({
      name: 'clinic_ai_queue_jobs',
      help: 'Jobs in the AI queues by BullMQ state (shared by every worker: read it from one)',
      labelNames: ['queue', 'state'],
      registers: [this.registry],
      async collect() {
        let timer: NodeJS.Timeout | undefined;
        const depths = await Promise.race([read().catch(() => null), new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), 2000)))]);
        clearTimeout(timer);
        for (const { queue, counts } of depths ?? []) for (const [state, value] of Object.entries(counts)) this.set({ queue, state }, value);
      },
    });
  }
}
