import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { AUDIO_TAP_MAXLEN, DEFAULT_RETENTION, RETENTION_META_FIELDS, consultKeys, retentionField, retentionMs } from '@clinic-hub/protocol';
import { connectRedisClient, endConnection, type RedisClient, type RedisTarget } from '@clinic-hub/platform/redis';
import { defineScripts } from '@clinic-hub/platform/redis-scripts';
import type { EngineEvents, PublishedTrack } from '../engine/engine-types.js';
import { TrackDecoder, type PcmChunk } from './track-decoder.js';

/**
 * The audio tap: every published microphone, decoded to 16 kHz mono PCM and
 * appended in AUDIO_TAP_CHUNK_MS chunks to its consultation's audio stream
 * (`consultKeys(..).audio`, capped at ~AUDIO_TAP_MAXLEN entries), with the
 * fields of the contract in protocol/src/consult.ts: p, r, t, pcm, and an
 * entry with `end` when the track ends.
 *
 * Only for consultations an AI session follows: one whose meta hash says
 * `ai: "0"` (its clinic has AI off) is not tapped at all. The stream expires
 * the clinic's `retainAudioMs` after its last write (every batch renews it),
 * and nothing brings back a stream the AI session has read and deleted:
 * each batch goes in a script (tap-append) that writes nothing once the
 * session is done (its ai-state hash says `done`), so audio still on its way
 * then (queued while Redis was slow, or spoken as the consultation ended) is
 * dropped, and the tap stops decoding that consultation's tracks.
 *
 * Writes never hold up the SFU: entries wait in one bounded queue and go to
 * Redis in pipelined batches, one batch at a time. When Redis is slow or
 * away the queue fills and the oldest audio is dropped (counted in
 * clinic_media_audio_tap_dropped_chunks_total); `end` entries are never dropped.
 */

export interface AudioTapOptions {
  logger: Logger;
  registry?: Registry;
  /** Chunks held while Redis is slow: the default is 60 s of one speaker (10 s each of six). */
  maxQueuedChunks?: number;
  /** Which tracks to tap (e.g. only consultations of clinics with AI on); default every microphone. */
  shouldTap?: (track: PublishedTrack) => boolean;
  /** Entries per pipelined batch. */
  batchSize?: number;
}

export interface AudioTap extends Pick<EngineEvents, 'trackPublished'> {
  /** Adds the tap's counters to a registry (the node's /metrics). */
  registerMetrics(registry: Registry): void;
  /** Tracks being tapped now. */
  readonly activeTracks: number;
  /** Entries waiting to be written. */
  readonly queued: number;
  /** Ends every tap (each gets its `end` entry) and writes what is queued, for at most `timeoutMs`. */
  close(timeoutMs?: number): Promise<void>;
}

interface Entry {
  key: string;
  /** The consultation's ai-state hash: its `done` says no AI session reads the stream again. */
  doneKey: string;
  fields: (string | Buffer)[];
  /** The track's `end` entry: never dropped. */
  end: boolean;
  /** Written at the track's end (its last audio, its `end`): only into a stream that is there, never recreating one the AI session has deleted. */
  existingOnly: boolean;
  /** How long the stream lives after this write. */
  ttlMs: number;
}

const RETRY_AFTER_MS = 500;
const DEFAULT_AUDIO_MS = retentionMs(DEFAULT_RETENTION).audioMs;

export function createAudioTap(redis: RedisClient, options: AudioTapOptions): AudioTap {
  const { logger } = options;
  const maxQueued = options.maxQueuedChunks ?? 600;
  const batchSize = options.batchSize ?? 100;
  const registers = options.registry ? [options.registry] : [];
  const metrics = {
    chunks: new Counter({ name: 'clinic_media_audio_tap_chunks_total', help: 'PCM chunks written to consultation audio streams', registers }),
    dropped: new Counter({ name: 'clinic_media_audio_tap_dropped_chunks_total', help: 'PCM chunks dropped (oldest first) because Redis could not keep up', registers }),
    decodeErrors: new Counter({ name: 'clinic_media_audio_tap_decode_errors_total', help: 'Opus packets that did not decode', registers }),
    queued: new Gauge({ name: 'clinic_media_audio_tap_queued_chunks', help: 'PCM chunks waiting to be written', registers }),
    tracks: new Gauge({ name: 'clinic_media_audio_tap_tracks', help: 'Microphone tracks being tapped', registers }),
  };

  const scripts = defineScripts(redis, new URL('./scripts/', import.meta.url), 'clinicTap', ['tap-append']);
  /** Streams whose AI session is done (tap-append said so): their tracks' audio is not decoded or sent any more. */
  const sessionDone = new Set<string>();
  const queue: Entry[] = [];
  let writing = false;
  let retryTimer: NodeJS.Timeout | null = null;
  let lastFailureLogged = 0;
  const closers = new Set<() => void>();
  let closed = false;

  function enqueue(entry: Entry): void {
    queue.push(entry);
    let over = queue.length - maxQueued;
    for (let i = 0; over > 0 && i < queue.length; ) {
      if (queue[i]!.end) {
        i++;
        continue;
      }
      queue.splice(i, 1);
      metrics.dropped.inc();
      over--;
    }
    metrics.queued.set(queue.length);
    write();
  }

  /**
   * One consultation's entries in one script (tap-append): written in order,
   * with the stream's expiry, unless its AI session is done (then dropped:
   * nobody reads them again: resolves false). Rejects when Redis did not take them.
   */
  async function writeConsultation(entries: Entry[]): Promise<boolean> {
    const { key, doneKey } = entries[0]!;
    const args: (string | number | Buffer)[] = [Math.max(...entries.map((e) => e.ttlMs)), AUDIO_TAP_MAXLEN];
    for (const entry of entries) args.push(entry.existingOnly ? '1' : '0', entry.fields.length, ...entry.fields);
    return (await scripts['tap-append']<number>([doneKey, key], args)) >= 0;
  }

  function write(): void {
    if (writing || retryTimer || queue.length === 0) return;
    writing = true;
    const batch = queue.splice(0, batchSize);
    metrics.queued.set(queue.length);
    let failure: Error | null = null;
    const discarded = new Set<Entry>();
    // One script per consultation, written side by side; a consultation whose write fails goes back, the others count.
    const groups = new Map<string, Entry[]>();
    for (const entry of batch) {
      const group = groups.get(entry.key);
      if (group) group.push(entry);
      else groups.set(entry.key, [entry]);
    }
    Promise.all(
      [...groups.values()].map((group) =>
        writeConsultation(group).then(
          (wanted) => {
            if (!wanted) for (const entry of group) discarded.add(entry);
            return [] as Entry[];
          },
          (error: Error) => {
            failure = error;
            return group;
          },
        ),
      ),
    )
      .then((failed) => {
        const unwritten = new Set(failed.flat());
        metrics.chunks.inc(batch.filter((e) => !e.end && !unwritten.has(e) && !discarded.has(e)).length);
        for (const entry of discarded) sessionDone.add(entry.key);
        if (unwritten.size > 0) throw Object.assign(failure ?? new Error('audio tap write failed'), { unwritten: batch.filter((e) => unwritten.has(e)) });
      })
      .catch((error: Error & { unwritten?: Entry[] }) => {
        // Put what was not written back in front; the bound drops the oldest if Redis stays away.
        queue.unshift(...(error.unwritten ?? batch));
        const over = queue.length - maxQueued;
        if (over > 0) {
          const kept = queue.filter((e, i) => e.end || i >= over);
          metrics.dropped.inc(queue.length - kept.length);
          queue.splice(0, queue.length, ...kept);
        }
        metrics.queued.set(queue.length);
        if (Date.now() - lastFailureLogged > 10_000) {
          lastFailureLogged = Date.now();
          logger.warn({ err: error.message, queued: queue.length }, 'audio tap: Redis write failed; holding the newest audio and retrying');
        }
        retryTimer = setTimeout(() => {
          retryTimer = null;
          write();
        }, RETRY_AFTER_MS);
      })
      .finally(() => {
        writing = false;
        write();
      });
  }

  /** Whether the consultation is tapped, and how long its stream lives: from its meta hash (none: tapped, for rooms without a hub). */
  async function policyFor(track: PublishedTrack, log: Logger): Promise<{ tap: boolean; ttlMs: number }> {
    try {
      const [ai, ttl] = await redis.hmget(consultKeys(track.clinic, track.roomId).meta, RETENTION_META_FIELDS.ai, RETENTION_META_FIELDS.audioMs);
      return { tap: ai !== '0', ttlMs: retentionField(ttl, DEFAULT_AUDIO_MS) };
    } catch (error) {
      // Redis away: the writes wait for it anyway; tapped, and kept no longer than the default.
      log.warn({ err: (error as Error).message }, 'audio tap: consultation not checked in Redis; tapping with the default retention');
      return { tap: true, ttlMs: DEFAULT_AUDIO_MS };
    }
  }

  function tap(track: PublishedTrack): void {
    const { audio: key, aiState: doneKey } = consultKeys(track.clinic, track.roomId);
    const base = ['p', track.participantId, 'r', track.part];
    const decoder = new TrackDecoder(track.codec.channels ?? 2);
    const log = logger.child({ clinic: track.clinic, consult: track.roomId, track: track.id });
    let ready = false;
    let ended = false;
    let ttlMs = DEFAULT_AUDIO_MS;
    let held: { payload: Buffer; timestamp: number; at: number }[] = [];
    const emit = (chunks: PcmChunk[], existingOnly = false) => {
      for (const chunk of chunks) enqueue({ key, doneKey, fields: [...base, 't', String(chunk.t), 'pcm', chunk.pcm], end: false, existingOnly, ttlMs });
    };
    const decode = (payload: Buffer, timestamp: number, at: number) => {
      const errors = decoder.decodeErrors;
      try {
        emit(decoder.push(payload, timestamp, at));
      } catch (error) {
        decoder.decodeErrors++;
        log.debug({ err: (error as Error).message }, 'audio tap: packet did not decode');
      }
      if (decoder.decodeErrors > errors) metrics.decodeErrors.inc(decoder.decodeErrors - errors);
    };

    const stopRtp = track.onRtp((packet) => {
      if (ended || packet.payload.length === 0 || sessionDone.has(key)) return;
      if (!ready) {
        // The WASM decoder compiles once per track (a few ms), and the consultation is looked up; what arrives meanwhile waits.
        if (held.length < 500) held.push({ payload: Buffer.from(packet.payload), timestamp: packet.header.timestamp, at: Date.now() });
        return;
      }
      decode(packet.payload, packet.header.timestamp, Date.now());
    });
    Promise.all([decoder.ready, policyFor(track, log)]).then(
      ([, policy]) => {
        if (ended) return;
        if (!policy.tap) return drop();
        ttlMs = policy.ttlMs;
        ready = true;
        for (const p of held.splice(0)) decode(p.payload, p.timestamp, p.at);
      },
      (error: Error) => log.error({ err: error.message }, 'audio tap: Opus decoder failed to load'),
    );

    /** No AI session follows the consultation: nothing of this microphone goes to Redis. */
    const drop = () => {
      ended = true;
      held = [];
      stopRtp();
      stopEnded();
      closers.delete(finish);
      metrics.tracks.set(closers.size);
      decoder.free();
      log.debug('audio tap: no AI session follows this consultation; not tapped');
    };

    const finish = () => {
      if (ended) return;
      ended = true;
      // Forgotten with the track (a track of the consultation still running finds out again at its next write).
      sessionDone.delete(key);
      stopRtp();
      stopEnded();
      closers.delete(finish);
      metrics.tracks.set(closers.size);
      const last = decoder.flush();
      if (last) emit([last], true);
      enqueue({ key, doneKey, fields: [...base, 't', String(decoder.endMs()), 'end', '1'], end: true, existingOnly: true, ttlMs });
      decoder.free();
      log.debug('audio tap ended');
    };
    const stopEnded = track.onEnded(finish);
    closers.add(finish);
    metrics.tracks.set(closers.size);
  }

  return {
    registerMetrics(registry) {
      for (const metric of Object.values(metrics)) registry.registerMetric(metric);
    },
    trackPublished(track) {
      if (closed || track.kind !== 'audio' || track.source !== 'mic') return;
      if (track.codec.mimeType.toLowerCase() !== 'audio/opus') {
        logger.warn({ track: track.id, codec: track.codec.mimeType }, 'audio tap: not Opus; not tapped');
        return;
      }
      if (options.shouldTap && !options.shouldTap(track)) return;
      tap(track);
    },
    get activeTracks() {
      return closers.size;
    },
    get queued() {
      return queue.length;
    },
    async close(timeoutMs = 2000) {
      closed = true;
      for (const finish of [...closers]) finish();
      const until = Date.now() + timeoutMs;
      while ((queue.length > 0 || writing) && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
      if (retryTimer) clearTimeout(retryTimer);
    },
  };
}

/** The tap on its own Redis connection, for the media-server's main. */
export function startAudioTap(options: Omit<AudioTapOptions, 'logger'> & { redisTarget: RedisTarget | string; nodeId: string; logger: Logger }): AudioTap {
  const redis = connectRedisClient(options.redisTarget, `media:${options.nodeId}:audio-tap`);
  redis.on('error', () => undefined);
  const tap = createAudioTap(redis, options);
  let closing: Promise<void> | null = null;
  return {
    registerMetrics: tap.registerMetrics,
    trackPublished: tap.trackPublished,
    get activeTracks() {
      return tap.activeTracks;
    },
    get queued() {
      return tap.queued;
    },
    close: (timeoutMs) =>
      (closing ??= (async () => {
        await tap.close(timeoutMs);
        await endConnection(redis);
      })()),
  };
}
