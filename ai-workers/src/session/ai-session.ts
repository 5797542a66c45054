import { consultKeys, type AiSessionJob, type ConsultRole } from '@clinic-hub/protocol';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { isRedisUnavailable, type RedisClient, type ReplicaAck } from '@clinic-hub/platform/redis';
import { loadScript } from '@clinic-hub/platform/redis-scripts';
import type { AiWorkerConfig } from '../config.js';
import type { Engines } from '../engines/load-engines.js';
import { AiError } from '../errors.js';
import type { AiMetrics } from '../metrics.js';
import type { SegmenterOptions } from '../vad/speech-segmenter.js';
import { compareStreamIds, maxStreamId, minStreamId, parseAudioEntry } from './audio-entry.js';
import { ParticipantPipeline } from './participant-pipeline.js';
import { LiveResultSink } from './result-sink.js';
import { SessionClaim } from './session-claim.js';

/**
 * How a session run ended. `interrupted`: the worker is stopping; the job
 * goes back to the queue and resumes elsewhere. `superseded`: a write was
 * refused, the session's claim being another run's (this worker lost its job
 * lock, e.g. while Redis was away) or lost in a failover; this run stopped
 * writing at once (the worker claims the session again if it still holds the
 * job's lock). `rewound`: the claim held but a failover lost this run's last
 * writes (SessionClaim); it stopped writing, and the worker claims the
 * session again from what the shard kept if it holds the job's lock, which
 * redoes the finals lost. `unconfirmed`: the session is done, but no replica confirmed
 * it in time (AI_REDIS_ACK_REPLICAS): a failover could still lose its end, so
 * its job is tried again shortly, and that run finds it done (and waits
 * again) or finishes it again.
 */
export type SessionOutcome = 'ended' | 'stopped' | 'idle' | 'already-done' | 'interrupted' | 'superseded' | 'rewound' | 'unconfirmed';

export interface SessionDeps {
  /** For commands (state, commits, publishes). */
  redis: RedisClient;
  /** For the blocking XREAD: a connection of its own. */
  reader: RedisClient;
  engines: Engines;
  metrics: AiMetrics;
  config: AiWorkerConfig;
  log: Logger;
  /** The replica wait for a session's end (AI_REDIS_ACK_REPLICAS), on `redis`: one per worker (it listens to the connection). */
  ack: ReplicaAck;
}

const READ_COUNT = 200;
const READ_BLOCK_MS = 250;
const CONTROL_EVERY_MS = 500;
/** Commits waiting this deep count as being behind, like audio lag. */
const MAX_PENDING_COMMITS = 6;
const REDIS_RETRY_MS = 500;

const SCRIPTS = new URL('./scripts/', import.meta.url);
const SAVE_SESSION = loadScript(SCRIPTS, 'save-session');
const FINISH_SESSION = loadScript(SCRIPTS, 'finish-session');

/** Ask the worker following a consultation to finish it (the hub's "stop transcribing"); the session ends after the audio read so far. */
export async function requestAiSessionStop(redis: RedisClient, clinic: string, consult: string): Promise<void> {
  await redis.hset(consultKeys(clinic, consult).aiState, 'stop', '1');
}

/**
 * One consultation's live AI session: follows its audio stream from where
 * the last worker left it (per participant, the stream position up to which
 * everything is committed), runs each participant's pipeline, saves progress
 * after every batch, and ends when the consultation ends, every participant
 * has left for good, or a stop is requested. On abort (worker shutting
 * down) it finishes the entry in hand, saves its position and returns
 * `interrupted`.
 */
export class AiSession {
  private readonly keys: ReturnType<typeof consultKeys>;
  private readonly pipelines = new Map<string, ParticipantPipeline>();
  /** Every participant this session has heard of (now or before a resume): whether they have left. */
  private readonly left = new Map<string, boolean>();
  private readonly log: Logger;
  private lagMs = 0;
  private steadyNow = false;
  /**
   * Participants back after leaving whose `e:` mark (left) no save has cleared yet. Cleared by a counted
   * save like any other write, and kept until one is written: an uncounted write Redis refused or a
   * failover lost left the participant counted as gone while the run went on.
   */
  private readonly rejoined = new Set<string>();
  /** This run's claim on the session: every write checks it still holds and that none of this run's writes was lost. */
  private readonly claim: SessionClaim;

  constructor(
    private readonly job: AiSessionJob,
    private readonly deps: SessionDeps,
  ) {
    this.keys = consultKeys(job.clinic, job.consult);
    this.log = deps.log.child({ clinic: job.clinic, consult: job.consult });
    this.claim = new SessionClaim(deps.redis, this.keys.aiState);
  }

  /** Milliseconds behind the audio (0 when caught up). */
  get lag(): number {
    return this.lagMs;
  }

  /**
   * This run has got somewhere: it has saved a read position past the one
   * the session had when it claimed it, or read the audio stream to its end.
   * A run that dies each time on the same audio never is.
   */
  get steady(): boolean {
    return this.steadyNow;
  }

  async run(signal: AbortSignal): Promise<SessionOutcome> {
    const { redis, reader, config } = this.deps;
    // The newest run owns the session; an older one still going finds out at its next write or check and stops.
    // Claimed and read at once: everything the older run committed is in what this one resumes from.
    const ranOn = await this.shardNow();
    const state = await this.claim.claim();
    // Another run's end, maybe not on a replica yet: the claim, written after it, stands for it.
    if (state.done) return (await this.confirmed(ranOn)) ? 'already-done' : 'unconfirmed';
    const checkpoints = new Map<string, string>();
    const stresses = new Map<string, number>();
    for (const [field, value] of Object.entries(state)) {
      if (field.startsWith('p:')) checkpoints.set(field.slice(2), value);
      if (field.startsWith('s:')) stresses.set(field.slice(2), Number(value));
    }
    for (const participant of checkpoints.keys()) this.left.set(participant, state[`e:${participant}`] === '1');
    const read = state.read ?? '0-0';
    let position = [...checkpoints.values()].reduce(minStreamId, read);
    this.log.info({ resumeFrom: position, participants: checkpoints.size }, state.read ? 'AI session resumed' : 'AI session started');
    if (state.read) {
      // The tap's stream is capped (AUDIO_TAP_MAXLEN): after a long outage the oldest audio may be gone.
      const first = (await redis.xrange(this.keys.audio, '-', '+', 'COUNT', 1))[0]?.[0];
      if (first && compareStreamIds(first, position) > 0 && position !== '0-0') {
        this.log.warn({ resumeFrom: position, oldestKept: first }, 'the saved position is older than the oldest audio kept (AUDIO_TAP_MAXLEN): some audio may have been trimmed before it was read');
      }
    }
    const sink = new LiveResultSink(redis, this.job.clinic, this.job.consult, this.claim);
    let lastEntryAt = Date.now();
    let lastControlAt = 0;
    let consultEnded = false;
    let stopRequested = false;

    const pipelineFor = (participant: string, role: ConsultRole, prevId: string): ParticipantPipeline => {
      let pipeline = this.pipelines.get(participant);
      if (!pipeline) {
        pipeline = new ParticipantPipeline({
          consult: this.job.consult,
          language: this.job.language,
          participant,
          role,
          vad: this.deps.engines.vad,
          segmenter: segmenterOptions(config),
          stt: this.deps.engines.stt,
          emotion: this.deps.engines.emotion,
          sink,
          metrics: this.deps.metrics,
          log: this.log.child({ participant }),
          behind: () => this.lagMs > config.maxLagMs || this.pendingCommits() > MAX_PENDING_COMMITS,
          stressTauSeconds: config.stressTauSeconds,
          initialStress: stresses.get(participant) ?? null,
          checkpoint: checkpoints.get(participant) ?? prevId,
        });
        this.pipelines.set(participant, pipeline);
        // Back after leaving (a rejoin): no longer counted as gone, once a save has said so (saveProgress).
        if (this.left.get(participant)) this.rejoined.add(participant);
        this.left.set(participant, false);
      }
      return pipeline;
    };

    try {
      for (;;) {
        if (signal.aborted) {
          await this.saveProgress(position).catch(() => false);
          await Promise.all([...this.pipelines.values()].map((p) => p.abandon()));
          this.log.info({ position }, 'AI session interrupted; position saved for the next worker');
          return 'interrupted';
        }
        let response: [Buffer, [Buffer, Buffer[]][]][] | null;
        try {
          if (Date.now() - lastControlAt > CONTROL_EVERY_MS) {
            lastControlAt = Date.now();
            const [control, status] = await Promise.all([redis.hmget(this.keys.aiState, 'stop', 'owner', 'saves'), redis.hget(this.keys.meta, 'status')]);
            stopRequested = control[0] === '1';
            consultEnded = status === 'ended';
            // Also found here, not only at the next write: a run with nothing to write for a while redoes the finals lost sooner.
            if (this.claim.check(control[1] ?? null, control[2] ?? null)) return await this.claimLost();
          }
          if (stopRequested) return await this.finish(position, 'stopped');
          response = (await reader.xreadBuffer('COUNT', READ_COUNT, 'BLOCK', READ_BLOCK_MS, 'STREAMS', this.keys.audio, position)) as typeof response;
        } catch (error) {
          // Redis away (restarting, failing over): wait and read on from the same position; nothing is lost.
          if (!isRedisUnavailable(error)) throw error;
          this.log.warn({ code: 'STORE_UNAVAILABLE', err: (error as Error).message }, 'Redis unavailable; retrying');
          await new Promise((r) => setTimeout(r, REDIS_RETRY_MS));
          continue;
        }
        const entries = response?.[0]?.[1] ?? [];
        if (entries.length === 0) {
          this.lagMs = 0;
          this.steadyNow = true;
          const quiet = Date.now() - lastEntryAt;
          if (consultEnded) return await this.finish(position, 'ended');
          const everyoneLeft = this.left.size > 0 && [...this.left.values()].every(Boolean);
          if (everyoneLeft && quiet > config.jobs.endGraceMs) return await this.finish(position, 'ended');
          if (quiet > config.jobs.idleTimeoutMs) return await this.finish(position, 'idle');
          continue;
        }
        lastEntryAt = Date.now();
        for (const [idBuffer, fields] of entries) {
          const id = idBuffer.toString('latin1');
          const prevId = position;
          position = id;
          const entry = parseAudioEntry(id, fields);
          if (entry instanceof AiError) {
            this.deps.metrics.errors.inc({ code: entry.code });
            this.log.warn({ code: entry.code, detail: entry.detail }, 'audio entry skipped');
            continue;
          }
          const known = checkpoints.get(entry.participant);
          if (known !== undefined && compareStreamIds(id, known) <= 0 && !this.pipelines.has(entry.participant)) continue;
          const pipeline = pipelineFor(entry.participant, entry.role, prevId);
          if (compareStreamIds(id, pipeline.checkpoint) <= 0) continue;
          if (entry.end) {
            await pipeline.finish();
            pipeline.checkpoint = maxStreamId(pipeline.checkpoint, id);
            this.pipelines.delete(entry.participant);
            this.left.set(entry.participant, true);
            this.rejoined.delete(entry.participant);
            checkpoints.set(entry.participant, pipeline.checkpoint);
            if (!(await this.save([`p:${entry.participant}`, pipeline.checkpoint], [`e:${entry.participant}`, '1']))) return await this.claimLost();
            continue;
          }
          this.lagMs = Math.max(0, Date.now() - (entry.t + entry.pcm.length / 32));
          if (entry.pcm.length > 0) await pipeline.push(entry, prevId);
          // Finish the chunk in hand, then stop reading.
          if (signal.aborted) break;
        }
        const saved = await this.saveProgress(position).catch((error: unknown) => {
          // The next batch saves again; until then a resume re-reads a little more.
          if (!isRedisUnavailable(error)) throw error;
          return true;
        });
        if (!saved) return await this.claimLost();
        if (compareStreamIds(position, read) > 0) this.steadyNow = true;
      }
    } catch (error) {
      await Promise.all([...this.pipelines.values()].map((p) => p.abandon()));
      throw error;
    }
  }

  private pendingCommits(): number {
    let pending = 0;
    for (const pipeline of this.pipelines.values()) pending += pipeline.commitsPending;
    return pending;
  }

  /**
   * `read`: every entry before it has been seen; each participant's position:
   * everything of theirs up to it is committed. A participant in the middle
   * of an utterance keeps an older position, so resuming starts there.
   * Participants back after leaving are no longer marked as left (`e:` 0).
   * False when another run owns the session now.
   */
  private async saveProgress(position: string): Promise<boolean> {
    const positions = ['read', position];
    for (const [participant, pipeline] of this.pipelines) positions.push(`p:${participant}`, pipeline.checkpoint);
    const rejoined = [...this.rejoined];
    const saved = await this.save(positions, rejoined.flatMap((participant) => [`e:${participant}`, '0']));
    // Rejected (Redis away): kept for the next save. Written but its reply lost: the next save finds the count one ahead (rewound).
    if (saved) for (const participant of rejoined) this.rejoined.delete(participant);
    return saved;
  }

  /** Positions (only ever moved forward) and plain fields, if this run's claim still holds. */
  private save(positions: string[], fields: string[] = []): Promise<boolean> {
    return this.claim.write(SAVE_SESSION, [this.keys.aiState], [String(positions.length / 2), ...positions, ...fields]);
  }

  /** Done: the audio stream is deleted (read to its end) and, once the consultation has ended, what this session wrote expires with its data. */
  private async finish(position: string, outcome: 'ended' | 'stopped' | 'idle'): Promise<SessionOutcome> {
    await Promise.all([...this.pipelines.values()].map((p) => p.finish()));
    const { aiState, audio, meta, ai, record } = this.keys;
    const ranOn = await this.shardNow();
    if (!(await this.claim.write(FINISH_SESSION, [aiState, audio, meta, ai, record], [position, outcome, String(Date.now())]))) return this.claimLost();
    this.log.info({ outcome }, 'AI session finished; its audio stream deleted');
    return (await this.confirmed(ranOn)) ? outcome : 'unconfirmed';
  }

  /** The connection to the session's shard now, taken before a write the replica wait is to confirm (a Redis Cluster's). */
  private shardNow(): Promise<Redis | null | undefined> {
    return this.deps.ack.enabled ? this.deps.ack.shardOf(this.keys.aiState) : Promise.resolve(undefined);
  }

  /** True once the replicas asked for hold what this run wrote on the session's shard (`ranOn`, from shardNow), or none are asked for. */
  private async confirmed(ranOn: Redis | null | undefined): Promise<boolean> {
    if (!this.deps.ack.enabled) return true;
    const confirmed = await this.deps.ack.confirm({ key: this.keys.aiState, ...(ranOn !== undefined && { ranOn }) }).catch(() => false);
    if (!confirmed) this.log.warn('no replica confirmed the AI session\'s end in time (AI_REDIS_ACK_REPLICAS); its job is tried again shortly');
    return confirmed;
  }

  private async claimLost(): Promise<SessionOutcome> {
    await Promise.all([...this.pipelines.values()].map((p) => p.abandon()));
    const lost = this.claim.lostBecause ?? 'superseded';
    if (lost === 'rewound') this.log.warn('AI session\'s last writes lost in a failover (its state has fewer saves than this run made); this run stopped writing');
    else this.log.warn('AI session claimed by another run, or its claim lost in a failover; this run stopped writing');
    return lost;
  }
}

export function segmenterOptions(config: AiWorkerConfig): SegmenterOptions {
  return {
    threshold: config.vad.threshold,
    negThreshold: Math.max(0.01, config.vad.threshold - 0.15),
    minSpeechMs: config.vad.minSpeechMs,
    minSilenceMs: config.vad.minSilenceMs,
    speechPadMs: config.vad.speechPadMs,
    maxUtteranceMs: config.vad.maxUtteranceMs,
  };
}
