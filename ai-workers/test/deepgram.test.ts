import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { DeepgramEngine, type DeepgramOptions } from '../src/engines/deepgram-engine.js';
import type { SttStream } from '../src/engines/engine-types.js';
import { DeepgramServer, countRuns } from '@clinic-hub/test-kit/deepgram-server';

/**
 * The Deepgram engine through the real @deepgram/sdk against a local server
 * that speaks Deepgram's live protocol. The server "transcribes" runs of
 * equal samples as `value×count`, so a transcript shows whether every
 * sample arrived exactly once.
 */
const KEY = 'dg-test-key-0123456789';
let server: DeepgramServer | null = null;
const streams: SttStream[] = [];
afterEach(async () => {
  await Promise.all(streams.splice(0).map((s) => s.close()));
  await server?.stop();
  server = null;
});

const block = (value: number, samples = 1600) => new Float32Array(samples).fill(value / 32767);
const logs: object[] = [];
const log = pino({ level: 'debug' }, { write: (line: string) => logs.push(JSON.parse(line)) });

function open(options: Partial<DeepgramOptions> = {}) {
  const engine = new DeepgramEngine({ apiKey: KEY, url: server!.url, model: 'nova-2', keepAliveMs: 4000, finalizeTimeoutMs: 1500, maxFinalWaitMs: 8000, ...options });
  const partials: { utterance: string; text: string }[] = [];
  const stream = engine.openStream('ja', { onPartial: (utterance, text) => partials.push({ utterance, text }), dropPartials: () => false, onPartialDropped() {} }, log);
  streams.push(stream);
  return { engine, stream, partials };
}

async function speak(stream: SttStream, id: string, values: number[], paceMs = 0): Promise<Promise<string>> {
  stream.begin(id);
  for (const value of values) {
    stream.audio(block(value));
    if (paceMs) await new Promise((r) => setTimeout(r, paceMs));
  }
  return stream.end();
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const waitFor = async (what: () => boolean, ms = 5000) => {
  const deadline = Date.now() + ms;
  while (!what()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('Deepgram live engine (real SDK, local server)', () => {
  it('connects with the language and audio format, gives interim partials and a final per utterance', async () => {
    server = await new DeepgramServer({ apiKey: KEY, interimEverySamples: 3200 }).start();
    const { stream, partials, engine } = open();
    const started = Date.now();
    const first = await speak(stream, 'u1', range(1, 20), 5);
    const second = await speak(stream, 'u2', range(21, 25), 5);
    const [a, b] = await Promise.all([first, second]);
    console.log(`two utterances (2.0 s + 0.5 s of audio) final after ${Date.now() - started} ms; ${partials.length} partials`);
    expect([...countRuns(a).entries()]).toEqual(range(1, 20).map((v) => [v, 1600]));
    expect([...countRuns(b).entries()]).toEqual(range(21, 25).map((v) => [v, 1600]));
    expect(partials.filter((p) => p.utterance === 'u1').length).toBeGreaterThan(2);
    expect(partials.every((p) => p.utterance === 'u1' || p.utterance === 'u2')).toBe(true);
    const connection = server.connections[0]!;
    expect(server.connections.length).toBe(1);
    expect(Object.fromEntries(connection.query)).toMatchObject({ language: 'ja', model: 'nova-2', encoding: 'linear16', sample_rate: '16000', channels: '1', interim_results: 'true' });
    expect(connection.finalizes).toBe(2);
    expect(engine.engineName()).toBe('deepgram/nova-2');
    await stream.close();
    expect(connection.closeStreams).toBe(1);
    expect(connection.closedBy).toBe('client');
  });

  it('keeps a silent connection open with KeepAlive (the server closes idle ones)', async () => {
    server = await new DeepgramServer({ apiKey: KEY, idleTimeoutMs: 700 }).start();
    const { stream } = open({ keepAliveMs: 300 });
    expect(await speak(stream, 'u1', [5, 6])).toBe('5x1600 6x1600');
    await new Promise((r) => setTimeout(r, 2000));
    expect(server.connections.length).toBe(1);
    expect(server.connections[0]!.closedBy).toBeNull();
    expect(server.connections[0]!.keepAlives).toBeGreaterThanOrEqual(3);
    expect(await speak(stream, 'u2', [7])).toBe('7x1600');
  });

  it('without KeepAlive the server closes the stream; the engine reconnects', async () => {
    server = await new DeepgramServer({ apiKey: KEY, idleTimeoutMs: 400 }).start();
    const { stream } = open({ keepAliveMs: 60_000 });
    expect(await speak(stream, 'u1', [1])).toBe('1x1600');
    await waitFor(() => server!.connections[0]!.closedBy === 'server-idle');
    await waitFor(() => server!.connections.length >= 2);
    expect(server.connections[0]!.closeCode).toBe(1011);
    expect(await speak(stream, 'u2', [2, 3])).toBe('2x1600 3x1600');
  });

  it('a connection dropped mid-utterance: reconnects, resends what was not final, loses and repeats nothing', async () => {
    server = await new DeepgramServer({ apiKey: KEY, finalEverySamples: 16000, interimEverySamples: 3200 }).start();
    const { stream } = open();
    await waitFor(() => server!.connections.length === 1);
    // 2.5 s into a 4 s utterance the connection drops; its first 2 s were already final (the server finalises every second).
    server.dropAfter(40_000);
    const text = await (await speak(stream, 'u1', range(1, 40), 10));
    const totals = countRuns(text);
    console.log(`after the drop: ${server.connections.length} connections; the second received ${(server.connections[1]!.samples.length / 16000).toFixed(2)} s of audio`);
    expect([...totals.entries()]).toEqual(range(1, 40).map((v) => [v, 1600]));
    expect(server.connections.length).toBe(2);
    expect(server.connections[0]!.closedBy).toBe('server-drop');
    // The new connection got the audio after the last final (from 2.0 s on), not all of it, not less.
    expect(server.connections[1]!.samples.length).toBe(40 * 1600 - 32000);
    expect(server.connections[1]!.samples[0]).toBe(21);
    expect(logs.some((l) => (l as { code?: string }).code === 'AI_ENGINE_UNAVAILABLE')).toBe(true);
  });

  it('a drop after an utterance ended but before its final came: the Finalize is sent again on the new connection', async () => {
    server = await new DeepgramServer({ apiKey: KEY, latencyMs: 300 }).start();
    const { stream } = open();
    await waitFor(() => server!.connections.length === 1);
    const pending = speak(stream, 'u1', range(1, 5));
    await waitFor(() => server!.connections[0]!.finalizes === 1);
    // Before the (slow) answer arrives, the connection goes.
    for (const ws of (server as unknown as { wss: { clients: Set<{ terminate(): void }> } }).wss.clients) ws.terminate();
    expect([...countRuns(await (await pending)).entries()]).toEqual(range(1, 5).map((v) => [v, 1600]));
    expect(server.connections.length).toBe(2);
    expect(server.connections[1]!.finalizes).toBe(1);
  });

  it('a refused key: the utterance settles empty after maxFinalWait, the stream keeps trying, nothing throws', async () => {
    server = await new DeepgramServer({ apiKey: 'another-key' }).start();
    const { stream } = open({ maxFinalWaitMs: 800 });
    expect(await (await speak(stream, 'u1', [1, 2]))).toBe('');
    expect(server.rejectedAuth).toBeGreaterThanOrEqual(2);
  });
});
