import { AI_RESULT_FIELD, AiEmotion, AiTranscript, consultAiChannel, consultKeys, type AiResultMessage } from '@clinic-hub/protocol';
import type { Redis } from 'ioredis';

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
 * Where a live session's results go: every result PUBLISHed on the clinic's
 * AI channel (the hub relays it to clinicians only); finals and emotion
 * scores also appended to the consultation's AI stream and its session
 * record. Each utterance is one MULTI with the participant's new stream
 * position, so a worker that dies mid-way leaves either all of it or none,
 * and the worker that resumes neither loses nor repeats a final.
 */
export class LiveResultSink implements ResultSink {
  private readonly keys: ReturnType<typeof consultKeys>;
  private readonly channel: string;

  constructor(
    private readonly redis: Redis,
    clinic: string,
    consult: string,
  ) {
    this.keys = consultKeys(clinic, consult);
    this.channel = consultAiChannel(clinic);
  }

  async publishPartial(transcript: AiTranscript): Promise<void> {
    const message: AiResultMessage = { type: 'transcript', payload: AiTranscript.parse(transcript) };
    await this.redis.publish(this.channel, JSON.stringify(message));
  }

  async commit(commit: UtteranceCommit): Promise<void> {
    const multi = this.redis.multi();
    const messages: AiResultMessage[] = [];
    if (commit.final) messages.push({ type: 'transcript', payload: AiTranscript.parse(commit.final) });
    if (commit.emotion) messages.push({ type: 'emotion', payload: AiEmotion.parse(commit.emotion) });
    for (const message of messages) {
      const json = JSON.stringify(message);
      multi.xadd(this.keys.ai, 'MAXLEN', '~', AI_STREAM_MAXLEN, '*', AI_RESULT_FIELD, json);
      multi.xadd(
        this.keys.record,
        '*',
        'type',
        message.type === 'transcript' ? 'transcript' : 'emotion',
        'at',
        String(Date.now()),
        'participant',
        message.payload.participant,
        'utterance',
        message.payload.utterance,
        AI_RESULT_FIELD,
        json,
      );
      multi.publish(this.channel, json);
    }
    const state: Record<string, string> = { [`p:${commit.participant}`]: commit.checkpoint };
    if (commit.stress !== null) state[`s:${commit.participant}`] = String(commit.stress);
    multi.hset(this.keys.aiState, state);
    const results = await multi.exec();
    const failed = results?.find(([error]) => error);
    if (!results || failed) throw failed?.[0] ?? new Error('MULTI aborted');
  }
}
