import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

/**
 * A local server speaking Deepgram's live transcription protocol
 * (wss://api.deepgram.com/v1/listen), for the real @deepgram/sdk to talk to:
 * `Authorization: Token KEY` on the upgrade (401 otherwise), query
 * parameters (model, language, encoding=linear16, sample_rate, channels,
 * interim_results, vad_events, …), binary audio frames, and the JSON control
 * messages KeepAlive, Finalize and CloseStream; it answers with Results
 * (interim and is_final, `from_finalize` after a Finalize), SpeechStarted,
 * UtteranceEnd and, on CloseStream, Metadata before closing. Like Deepgram
 * it closes a stream that gets neither audio nor KeepAlive for a while
 * (1011, NET-0001).
 *
 * It recognises no speech: `transcribe` turns the audio of a result into
 * words (by default: runs of equal samples, `value×count`, which lets a test
 * see every sample that arrived, exactly once).
 */
export interface DeepgramServerOptions {
  apiKey: string;
  /** Audio (in samples) between interim results. */
  interimEverySamples?: number;
  /** Audio (in samples) after which Deepgram would finalise a segment on its own. */
  finalEverySamples?: number;
  /** Close a connection after this long without audio or KeepAlive (Deepgram: 10 s). */
  idleTimeoutMs?: number;
  /** Milliseconds before each result is sent (network and model time). */
  latencyMs?: number;
  transcribe?: (samples: Int16Array) => string[];
}

export interface ListenConnection {
  query: URLSearchParams;
  /** Every audio sample received, in order. */
  samples: number[];
  keepAlives: number;
  finalizes: number;
  closeStreams: number;
  closedBy: 'client' | 'server-idle' | 'server-drop' | null;
  closeCode: number | null;
}

export class DeepgramServer {
  readonly connections: ListenConnection[] = [];
  rejectedAuth = 0;
  private dropAt: number | null = null;
  private server!: Server;
  private wss!: WebSocketServer;
  port = 0;

  constructor(private readonly options: DeepgramServerOptions) {}

  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    this.server = createServer((_req, res) => res.writeHead(404).end());
    this.wss = new WebSocketServer({ noServer: true });
    this.server.on('upgrade', (req, socket, head) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname !== '/v1/listen') {
        socket.end('HTTP/1.1 404 Not Found\r\n\r\n');
        return;
      }
      if (req.headers.authorization !== `Token ${this.options.apiKey}`) {
        this.rejectedAuth++;
        socket.end('HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\n\r\n{"err_code":"INVALID_AUTH","err_msg":"Invalid credentials."}');
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req));
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /** Drop the current connection abruptly (no close frame) once it has received this many samples. */
  dropAfter(samples: number): void {
    this.dropAt = samples;
  }

  async stop(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    this.wss.close();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(ws: WebSocket, req: IncomingMessage): void {
    const query = new URL(req.url ?? '/', 'http://x').searchParams;
    const connection: ListenConnection = { query, samples: [], keepAlives: 0, finalizes: 0, closeStreams: 0, closedBy: null, closeCode: null };
    this.connections.push(connection);
    const requestId = randomUUID();
    const interimEvery = this.options.interimEverySamples ?? 3200;
    const finalEvery = this.options.finalEverySamples ?? 16000;
    const transcribe = this.options.transcribe ?? runLengthWords;
    const vadEvents = query.get('vad_events') === 'true';
    const utteranceEndMs = query.get('utterance_end_ms');
    let finalisedUpTo = 0;
    let lastInterimAt = 0;
    let speaking = false;
    let idle: NodeJS.Timeout | null = null;
    const armIdle = () => {
      if (idle) clearTimeout(idle);
      idle = setTimeout(() => {
        connection.closedBy = 'server-idle';
        ws.close(1011, 'NET-0001');
      }, this.options.idleTimeoutMs ?? 10_000);
    };
    armIdle();
    const send = (message: object) => {
      const json = JSON.stringify(message);
      const deliver = () => ws.readyState === ws.OPEN && ws.send(json);
      if (this.options.latencyMs) setTimeout(deliver, this.options.latencyMs);
      else deliver();
    };
    const results = (from: number, to: number, flags: { is_final: boolean; speech_final?: boolean; from_finalize?: boolean }) => {
      const audio = Int16Array.from(connection.samples.slice(from, to));
      const words = to > from ? transcribe(audio) : [];
      const start = from / 16000;
      const duration = (to - from) / 16000;
      send({
        type: 'Results',
        channel_index: [0, 1],
        duration,
        start,
        is_final: flags.is_final,
        speech_final: flags.speech_final ?? false,
        ...(flags.from_finalize ? { from_finalize: true } : {}),
        channel: {
          alternatives: [
            {
              transcript: words.join(' '),
              confidence: words.length ? 0.99 : 0,
              words: words.map((word, i) => ({
                word,
                punctuated_word: word,
                start: start + (duration * i) / words.length,
                end: start + (duration * (i + 1)) / words.length,
                confidence: 0.99,
              })),
            },
          ],
        },
        metadata: { request_id: requestId, model_info: { name: query.get('model') ?? 'general', version: 'local-test', arch: 'local' }, model_uuid: '00000000-0000-0000-0000-000000000000' },
      });
    };
    const finalise = (fromFinalize: boolean) => {
      const to = connection.samples.length;
      if (to > finalisedUpTo || fromFinalize) results(finalisedUpTo, to, { is_final: true, speech_final: fromFinalize, from_finalize: fromFinalize });
      finalisedUpTo = to;
      lastInterimAt = to;
    };
    ws.on('message', (data, isBinary) => {
      armIdle();
      if (isBinary) {
        const bytes = data as Buffer;
        for (let i = 0; i + 1 < bytes.length; i += 2) connection.samples.push(bytes.readInt16LE(i));
        if (vadEvents && !speaking && connection.samples.length > 0) {
          speaking = true;
          send({ type: 'SpeechStarted', channel: [0, 1], timestamp: finalisedUpTo / 16000 });
        }
        if (this.dropAt !== null && connection.samples.length >= this.dropAt) {
          this.dropAt = null;
          connection.closedBy = 'server-drop';
          ws.terminate();
          return;
        }
        const n = connection.samples.length;
        if (n - finalisedUpTo >= finalEvery) {
          // Deepgram finalises on its own now and then; so does this server, at a fixed size.
          results(finalisedUpTo, finalisedUpTo + finalEvery, { is_final: true });
          finalisedUpTo += finalEvery;
          lastInterimAt = finalisedUpTo;
        }
        if (n - lastInterimAt >= interimEvery) {
          results(finalisedUpTo, n, { is_final: false });
          lastInterimAt = n;
        }
        return;
      }
      let message: { type?: string };
      try {
        message = JSON.parse(data.toString());
      } catch {
        ws.close(1008, 'DATA-0000');
        return;
      }
      if (message.type === 'KeepAlive') connection.keepAlives++;
      else if (message.type === 'Finalize') {
        connection.finalizes++;
        finalise(true);
        speaking = false;
        if (utteranceEndMs) send({ type: 'UtteranceEnd', channel: [0, 1], last_word_end: finalisedUpTo / 16000 });
      } else if (message.type === 'CloseStream') {
        connection.closeStreams++;
        finalise(false);
        send({ type: 'Metadata', transaction_key: 'deprecated', request_id: requestId, sha256: '', created: new Date().toISOString(), duration: connection.samples.length / 16000, channels: 1 });
        connection.closedBy = 'client';
        setTimeout(() => ws.close(1000), (this.options.latencyMs ?? 0) + 10);
      }
    });
    ws.on('close', (code) => {
      connection.closeCode = code;
      if (idle) clearTimeout(idle);
    });
  }
}

/** Runs of equal sample values as words `value×count`. */
export function runLengthWords(samples: Int16Array): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < samples.length) {
    let j = i;
    while (j < samples.length && samples[j] === samples[i]) j++;
    words.push(`${samples[i]}x${j - i}`);
    i = j;
  }
  return words;
}

/** Adds up `value×count` words across a transcript: value → total count. */
export function countRuns(text: string): Map<number, number> {
  const totals = new Map<number, number>();
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const [value, count] = word.split('x').map(Number);
    totals.set(value!, (totals.get(value!) ?? 0) + count!);
  }
  return totals;
}
