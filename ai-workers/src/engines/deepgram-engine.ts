import { DeepgramClient } from '@deepgram/sdk';
import type { ConsultLanguage } from '@clinic-hub/protocol';
import type { Logger } from 'pino';
import { float32ToS16le } from '../audio/pcm.js';
import type { SttEngine, SttStream, SttStreamHooks } from './engine-types.js';

export interface DeepgramOptions {
  apiKey: string;
  /** wss://api.deepgram.com, or a compatible endpoint (a proxy, a test server). */
  url: string;
  model: string;
  /** Deepgram closes a stream that gets neither audio nor KeepAlive for 10 s. */
  keepAliveMs: number;
  /** After Finalize: how long to wait for the flushed results before settling with what has come. */
  finalizeTimeoutMs: number;
  /** How long an utterance may wait for its final while the connection is down, before it settles with what has come. */
  maxFinalWaitMs: number;
}

/** Deepgram's language code for a consultation language. */
const LANGUAGE: Record<ConsultLanguage, string> = { ja: 'ja', en: 'en' };

/**
 * Deepgram's live API through @deepgram/sdk: one WebSocket per participant,
 * kept open across utterances (KeepAlive while silent). Only speech is sent
 * (the VAD decides); each utterance ends with a Finalize, and its final is
 * the is_final results up to the `from_finalize` one. Audio not yet covered
 * by a final result is kept; when the connection drops it is sent again on
 * a new connection (with the Finalize of any utterance that was waiting), so
 * nothing said is lost and nothing is transcribed twice.
 */
export class DeepgramEngine implements SttEngine {
  readonly kind = 'deepgram';
  private readonly client: DeepgramClient;

  constructor(private readonly options: DeepgramOptions) {
    this.client = new DeepgramClient({ apiKey: options.apiKey, baseUrl: options.url });
  }

  supports(language: ConsultLanguage): boolean {
    return language in LANGUAGE;
  }

  engineName(): string {
    return `deepgram/${this.options.model}`.slice(0, 64);
  }

  openStream(language: ConsultLanguage, hooks: SttStreamHooks, log: Logger): SttStream {
    return new DeepgramStream(this.client, this.options, LANGUAGE[language], hooks, log);
  }

  async close(): Promise<void> {}
}

type ListenSocket = Awaited<ReturnType<DeepgramClient['listen']['v1']['connect']>>;

interface Utterance {
  id: string;
  /** Position of its first and (once ended) last sample on the stream's timeline of speech sent. */
  start: number;
  end: number | null;
  finals: string[];
  interim: string;
  settle: (text: string) => void;
  /** Resolves with the final text once settled (ended utterances only). */
  done: Promise<string> | null;
  settled: boolean;
  timer: NodeJS.Timeout | null;
}

interface Retained {
  start: number;
  pcm: Buffer;
  utterance: Utterance;
}

interface Connection {
  socket: ListenSocket;
  /** Timeline position of the connection's first sample (Deepgram's times count from there). */
  base: number;
  open: boolean;
}

const SAMPLES_PER_SECOND = 16000;

class DeepgramStream implements SttStream {
  /** Samples of speech on the timeline so far. */
  private sent = 0;
  /** Timeline position up to which final results have come. */
  private acked = 0;
  private retained: Retained[] = [];
  private utterances: Utterance[] = [];
  private current: Utterance | null = null;
  private connection: Connection | null = null;
  private connecting = false;
  private closing = false;
  private attempt = 0;
  private lastSendAt = Date.now();
  private readonly keepAlive: NodeJS.Timeout;
  private reconnectTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly client: DeepgramClient,
    private readonly options: DeepgramOptions,
    private readonly language: string,
    private readonly hooks: SttStreamHooks,
    private readonly log: Logger,
  ) {
    this.keepAlive = setInterval(() => this.sendKeepAlive(), Math.max(250, Math.floor(options.keepAliveMs / 2)));
    this.keepAlive.unref();
    void this.connect();
  }

  begin(id: string): void {
    const utterance: Utterance = { id, start: this.sent, end: null, finals: [], interim: '', settle: () => undefined, done: null, settled: false, timer: null };
    this.utterances.push(utterance);
    this.current = utterance;
  }

  audio(samples: Float32Array): void {
    const utterance = this.current;
    if (!utterance) return;
    const chunk: Retained = { start: this.sent, pcm: float32ToS16le(samples), utterance };
    this.sent += samples.length;
    this.retained.push(chunk);
    if (this.connection?.open) this.send(this.connection, chunk.pcm);
  }

  end(): Promise<string> {
    const utterance = this.current;
    this.current = null;
    if (!utterance) return Promise.resolve('');
    utterance.end = this.sent;
    const result = new Promise<string>((resolve) => (utterance.settle = resolve));
    utterance.done = result;
    // However the connection fares, the pipeline gets an answer in the end.
    utterance.timer = setTimeout(() => {
      this.log.warn({ utterance: utterance.id, code: 'AI_ENGINE_UNAVAILABLE' }, 'deepgram: no final in time; settling with the results received');
      this.settle(utterance);
    }, this.options.maxFinalWaitMs);
    if (this.connection?.open) this.finalize(this.connection, utterance);
    return result;
  }

  async close(): Promise<void> {
    this.current = null;
    await Promise.all(this.utterances.map((u) => u.done));
    this.closing = true;
    clearInterval(this.keepAlive);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const connection = this.connection;
    this.connection = null;
    if (!connection) return;
    if (connection.open) {
      const closed = new Promise<void>((resolve) => connection.socket.on('close', () => resolve()));
      try {
        connection.socket.sendCloseStream({ type: 'CloseStream' });
      } catch {
        // Already closing.
      }
      await Promise.race([closed, new Promise((r) => setTimeout(r, 2000))]);
    }
    connection.socket.close();
  }

  private async connect(): Promise<void> {
    if (this.closing || this.connecting) return;
    this.connecting = true;
    const base = this.acked;
    let socket: ListenSocket;
    try {
      socket = await this.client.listen.v1.connect({
        model: this.options.model,
        language: this.language,
        encoding: 'linear16',
        sample_rate: SAMPLES_PER_SECOND,
        channels: 1,
        interim_results: 'true',
        punctuate: 'true',
        smart_format: 'true',
        vad_events: 'true',
        // The worker's VAD ends utterances (Finalize); Deepgram's own endpointing only splits long ones.
        endpointing: 1000,
        Authorization: `Token ${this.options.apiKey}`,
        reconnectAttempts: 0,
        connectionTimeoutInSeconds: 5,
      });
    } catch (error) {
      this.connecting = false;
      this.scheduleReconnect(error);
      return;
    }
    const connection: Connection = { socket, base, open: false };
    socket.on('open', () => {
      this.connecting = false;
      if (this.closing) return socket.close();
      this.attempt = 0;
      connection.open = true;
      this.connection = connection;
      this.resend(connection);
    });
    socket.on('message', (message) => this.onMessage(connection, message));
    socket.on('error', (error) => this.log.debug({ err: error.message }, 'deepgram socket error'));
    socket.on('close', (event) => {
      const wasOpen = connection.open;
      connection.open = false;
      if (this.connection === connection) this.connection = null;
      if (!wasOpen) this.connecting = false;
      if (this.closing) return;
      this.log.warn({ code: 'AI_ENGINE_UNAVAILABLE', closeCode: event.code, wasOpen, unacknowledgedMs: Math.round(((this.sent - this.acked) * 1000) / SAMPLES_PER_SECOND) }, 'deepgram connection closed; reconnecting');
      this.scheduleReconnect(null);
    });
    socket.connect();
  }

  private scheduleReconnect(error: unknown): void {
    if (this.closing || this.reconnectTimer) return;
    const delay = Math.min(5000, 100 * 2 ** this.attempt++);
    if (error) this.log.warn({ code: 'AI_ENGINE_UNAVAILABLE', err: error instanceof Error ? error.message : String(error), retryInMs: delay }, 'deepgram connect failed');
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.connect();
    }, delay);
    this.reconnectTimer.unref();
  }

  /** A fresh connection: everything not yet final, again, with the Finalize of each utterance that had ended. */
  private resend(connection: Connection): void {
    connection.base = this.acked;
    for (let i = 0; i < this.retained.length; i++) {
      const chunk = this.retained[i]!;
      const from = Math.max(0, this.acked - chunk.start);
      if (from * 2 < chunk.pcm.length) this.send(connection, chunk.pcm.subarray(from * 2));
      const next = this.retained[i + 1];
      if (chunk.utterance.end !== null && next?.utterance !== chunk.utterance) this.finalize(connection, chunk.utterance);
    }
    for (const utterance of this.utterances) if (utterance.end !== null && !utterance.settled && !this.retained.some((c) => c.utterance === utterance)) this.finalize(connection, utterance);
  }

  private send(connection: Connection, pcm: Buffer): void {
    try {
      connection.socket.sendMedia(pcm);
      this.lastSendAt = Date.now();
    } catch (error) {
      this.log.debug({ err: error instanceof Error ? error.message : String(error) }, 'deepgram send failed; kept for the next connection');
    }
  }

  private finalize(connection: Connection, utterance: Utterance): void {
    if (utterance.settled) return;
    try {
      connection.socket.sendFinalize({ type: 'Finalize' });
      this.lastSendAt = Date.now();
    } catch {
      return;
    }
    if (utterance.timer) clearTimeout(utterance.timer);
    utterance.timer = setTimeout(() => {
      this.log.debug({ utterance: utterance.id }, 'deepgram: no from_finalize result; settling with the finals received');
      this.settle(utterance);
    }, this.options.finalizeTimeoutMs);
  }

  private sendKeepAlive(): void {
    const connection = this.connection;
    if (!connection?.open || Date.now() - this.lastSendAt < this.options.keepAliveMs) return;
    try {
      connection.socket.sendKeepAlive({ type: 'KeepAlive' });
      this.lastSendAt = Date.now();
    } catch {
      // The close handler reconnects.
    }
  }

  private onMessage(connection: Connection, message: unknown): void {
    if (!message || typeof message !== 'object' || (message as { type?: unknown }).type !== 'Results') return;
    const result = message as { start: number; duration: number; is_final?: boolean; from_finalize?: boolean; channel?: { alternatives?: { transcript?: string }[] } };
    if (connection !== this.connection) return;
    const text = (result.channel?.alternatives?.[0]?.transcript ?? '').trim();
    const startAt = connection.base + Math.round(result.start * SAMPLES_PER_SECOND);
    const endAt = connection.base + Math.round((result.start + result.duration) * SAMPLES_PER_SECOND);
    // A result belongs to the utterance its middle falls in (an empty flush at an utterance's end, to that utterance).
    const middle = Math.round((startAt + endAt) / 2) - 1;
    const utterance = this.utterances.find((u) => u.start <= middle && (u.end === null || middle < u.end));
    // None: a late result of an utterance already settled.
    if (!utterance || utterance.settled) return;
    if (result.is_final) {
      if (text) utterance.finals.push(text);
      utterance.interim = '';
      this.acknowledge(endAt);
      if (result.from_finalize) {
        for (const u of this.utterances) if (u.end !== null && u.start <= utterance.start && !u.settled) this.settle(u);
      }
    } else if (utterance.end === null) {
      utterance.interim = text;
      if (this.hooks.dropPartials()) this.hooks.onPartialDropped();
      else this.hooks.onPartial(utterance.id, [...utterance.finals, text].filter(Boolean).join(' '));
    }
  }

  private acknowledge(position: number): void {
    if (position <= this.acked) return;
    this.acked = Math.min(position, this.sent);
    this.retained = this.retained.filter((chunk) => chunk.start + chunk.pcm.length / 2 > this.acked);
  }

  private settle(utterance: Utterance): void {
    if (utterance.settled) return;
    utterance.settled = true;
    if (utterance.timer) clearTimeout(utterance.timer);
    // Its audio is done with, transcribed or not.
    if (utterance.end !== null) this.acknowledge(utterance.end);
    this.utterances = this.utterances.filter((u) => u !== utterance);
    utterance.settle(utterance.finals.join(' '));
  }
}
