import type { RedisClient } from '@clinic-hub/platform/redis';
import { AI_RESULT_FIELD, AiEmotion, AiTranscript, consultAiChannel, consultKeys, type AiResultMessage } from '@clinic-hub/protocol';
import { loadScript } from '@clinic-hub/platform/redis-scripts';
import type { SessionClaim } from './session-claim.js';

const COMMIT_UTTERANCE = loadScript(new URL('./scripts/', import.meta.url), 'commit-utterance');

/** This run's claim on the session is lost (another run has taken it over, or a failover lost its last writes): it must stop writing. */
export class SessionSupersededError extends Error {
  override readonly name = 'SessionSupersededError';
}

/** An utterance's results and the stream position they bring the participant to, written together or not at all. */
export interface UtteranceCommit {
  participant: string;
  final: AiTranscript | null;
  emotion: AiEmotion | null;
  /** The participant's audio entries up to this id are fully accounted for. */
  checkpoint: string;
  /** The participant's smoothed stress index after this utterance. */
  stress: number | null;
}

export interface ResultSink {
  /** A partial transcript: published for the live view only (dropped when behind). */
  publishPartial(transcript: AiTranscript): Promise<void>;
  commit(commit: UtteranceCommit): Promise<void>;
}

/** Far more finals and scores than a consultation has: only a runaway could reach it. */
const AI_STREAM_MAXLEN = 50_000;

/**
 * Where a live session's results go: every result SPUBLISHed on the clinic's
 * AI channel (the hub relays it to clinicians only); finals and emotion
 * scores also appended to the consultation's AI stream and its session
 * record. Each utterance is one script with the participant's new stream
 * position, so a worker that dies mid-way leaves either all of it or none,
 * and the worker that resumes neither loses nor repeats a final. The script
 * writes (and publishes) only while the run's claim holds and the state has
 * had every save the run made (SessionClaim): a run that lost its job (lock
 * expired while Redis was away) cannot write after its successor, and a run
 * whose last commits a failover lost cannot commit on past them (it is
 * claimed again and redoes them, so what clinicians were sent is stored
 * once, in order).
 */
export class LiveResultSink implements ResultSink {
  private readonly keys: ReturnType<typeof consultKeys>;
  private readonly channel: string;

  constructor(
    private readonly redis: RedisClient,
    clinic: string,
    consult: string,
    private readonly claim: SessionClaim,
  ) {
    this.keys = consultKeys(clinic, consult);
    this.channel = consultAiChannel(clinic);
  }

  async publishPartial(transcript: AiTranscript): Promise<void> {
    const message: AiResultMessage = { type: 'transcript', payload: AiTranscript.parse(transcript) };
    await this.redis.spublish(this.channel, JSON.stringify(message));
  }

  async commit(commit: UtteranceCommit): Promise<void> {
    const results: string[] = [];
    if (commit.final) results.push('transcript', commit.final.utterance, JSON.stringify({ type: 'transcript', payload: AiTranscript.parse(commit.final) } satisfies AiResultMessage));
    if (commit.emotion) results.push('emotion', commit.emotion.utterance, JSON.stringify({ type: 'emotion', payload: AiEmotion.parse(commit.emotion) } satisfies AiResultMessage));
    const written = await this.claim.write(COMMIT_UTTERANCE, [this.keys.aiState, this.keys.ai, this.keys.record], [
      this.channel,
      commit.participant,
      commit.checkpoint,
      commit.stress === null ? '' : String(commit.stress),
      String(Date.now()),
      String(AI_STREAM_MAXLEN),
      AI_RESULT_FIELD,
      ...results,
    ]);
    if (!written) throw new SessionSupersededError();
  }
}
