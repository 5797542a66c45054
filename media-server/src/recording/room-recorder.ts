import type { RedisClient } from '@clinic-hub/platform/redis';
import { mkdirSync } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { ConsultRole, RecordingFile } from '@clinic-hub/protocol';
import { continueTrace, traceLogFields, tracedJob, type TraceContext } from '@clinic-hub/platform/tracing';
import type { PublishedTrack, Recorder, RoomRecording } from '../engine/engine-types.js';
import { encryptFile, verifyFile, type RecordingKey } from '@clinic-hub/recordings';
import type { RecordingConfig } from '@clinic-hub/recordings';
import { RecordingError } from '@clinic-hub/recordings';
import { recordingDir, sealedPath, segmentName } from '@clinic-hub/recordings';
import type { RecordingJobs } from './recording-jobs.js';

/** A finalise job no replica confirmed in time: the recording stays marked open on the node, whose next start adds the job again. */
const FINALISE_UNCONFIRMED = 'no replica confirmed the finalise job in time (MEDIA_REDIS_ACK_REPLICAS); the recording stays marked open here and is queued again when this node restarts';
import {
  addFile,
  addParticipant,
  appendRecord,
  createRecordingMeta,
  getRecording,
  markClosedOnNode,
  markOpenOnNode,
  openOnNode,
  readConsentEvents,
  recordingKeys,
  recordingRetentionMs,
  setRecordingFields,
} from '@clinic-hub/recordings';
import { SegmentWriter, recoverSegment, type SegmentTarget } from './segment-writer.js';
import { fixWebmDurationInFile } from './webm-duration.js';

/** A track added or ended while recording restarts its participant's file after this pause, so tracks that come together make one segment. */
const RESTART_DEBOUNCE_MS = 250;
const OPEN_FIELD = 'open:';

export interface WeriftRecorderDeps {
  redis: RedisClient;
  config: RecordingConfig & { key: RecordingKey };
  jobs: Pick<RecordingJobs, 'finalise'>;
  /** This media-server node (MEDIA_NODE_ID): recordings it leaves open are closed when it starts again. */
  nodeId: string;
  logger: Logger;
  registry?: Registry;
}

/**
 * Consent-gated recording, the "how": the room decides when. One WebM
 * (VP8 + Opus) per participant's camera + microphone and one per screen
 * share, cut into segments (a new one when that participant's tracks change
 * or after RECORDING_SEGMENT_SECONDS); each segment is encrypted as it is
 * written (segment-writer.ts), and read back and checked when it closes.
 * Metadata and the session record are in Redis (recording-store.ts);
 * stopping queues the finalise job.
 */
export class WeriftRecorder implements Recorder {
  private readonly active = new Set<RoomRecordingSession>();
  readonly metrics: { segments: Counter; bytes: Counter; failures: Counter };

  constructor(private readonly deps: WeriftRecorderDeps) {
    const registers = deps.registry ? [deps.registry] : [];
    this.metrics = {
      segments: new Counter({ name: 'clinic_media_recording_segments_total', help: 'Recording segments closed and encrypted', registers }),
      bytes: new Counter({ name: 'clinic_media_recording_bytes_total', help: 'Bytes of encrypted recording written', registers }),
      failures: new Counter({ name: 'clinic_media_recording_failures_total', help: 'Recording segments that could not be written, closed or encrypted', registers }),
    };
  }

  /** Adds the recorder's counters to a registry (the node's /metrics). */
  registerMetrics(registry: Registry): void {
    for (const metric of Object.values(this.metrics)) registry.registerMetric(metric);
  }

  start(context: { clinic: string; consult: string; recordingId: string; tracks: PublishedTrack[] }): RoomRecording {
    const dir = recordingDir(this.deps.config.dir, context.clinic, context.recordingId);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const session = new RoomRecordingSession(this.deps, this.metrics, { ...context, dir }, () => this.active.delete(session));
    this.active.add(session);
    return session;
  }

  /** Recordings in progress on this node. */
  get activeCount(): number {
    return this.active.size;
  }

  /** Stops every recording (SIGTERM): files are closed and encrypted before the process ends. */
  async stopAll(reason: 'draining' | 'room-closed' = 'draining'): Promise<void> {
    await Promise.all([...this.active].map((session) => session.stop(reason)));
  }

  /**
   * At start-up: recordings this node left open when it last stopped (a
   * crash) are closed now — their unfinished segments sealed again from what
   * they hold, the recording marked stopped with reason `interrupted`, and
   * finalised.
   */
  async recoverInterrupted(): Promise<number> {
    const { redis, nodeId, logger } = this.deps;
    const open = await openOnNode(redis, nodeId);
    for (const { clinic, recording } of open) {
      try {
        await recoverOne(this.deps, clinic, recording, this.metrics);
      } catch (error) {
        logger.error({ clinic, recording, err: (error as Error).message }, 'could not recover an interrupted recording');
      }
    }
    return open.length;
  }
}

interface SessionContext {
  clinic: string;
  consult: string;
  recordingId: string;
  tracks: PublishedTrack[];
  dir: string;
}

interface OpenSegment {
  writer: SegmentWriter;
  name: string;
  index: number;
  rollover: NodeJS.Timeout;
}

class RoomRecordingSession implements RoomRecording {
  readonly recordingId: string;
  private readonly groups = new Map<string, ParticipantFiles>();
  private readonly ready: Promise<void>;
  private stopping: Promise<void> | null = null;
  private readonly startedAt = Date.now();
  private readonly participants = new Map<string, ConsultRole>();

  constructor(
    readonly deps: WeriftRecorderDeps,
    readonly metrics: WeriftRecorder['metrics'],
    readonly context: SessionContext,
    private readonly onClosed: () => void,
  ) {
    this.recordingId = context.recordingId;
    const { redis, nodeId } = deps;
    const { clinic, consult, recordingId } = context;
    for (const track of context.tracks) this.participants.set(track.participantId, track.part);
    this.ready = (async () => {
      await createRecordingMeta(redis, { id: recordingId, clinic, consult, node: nodeId, startedAt: this.startedAt });
      await markOpenOnNode(redis, nodeId, clinic, recordingId);
      for (const [id, part] of this.participants) await addParticipant(redis, clinic, recordingId, id, part);
      await appendRecord(redis, clinic, consult, 'recording-started', { node: nodeId, recording: recordingId, participants: [...this.participants.keys()].join(',') });
    })().catch((error: Error) => this.log().error({ err: error.message }, 'could not store recording metadata'));
    this.log().info({ tracks: context.tracks.length }, 'recording started');
    for (const track of context.tracks) this.groupFor(track).add(track, false);
    for (const group of this.groups.values()) group.restart();
  }

  log(): Logger {
    return this.deps.logger.child({ clinic: this.context.clinic, consult: this.context.consult, recording: this.recordingId });
  }

  private groupFor(track: PublishedTrack): ParticipantFiles {
    const kind = track.source === 'screen' ? 'screen' : 'av';
    const key = `${track.participantId}\n${kind}`;
    let group = this.groups.get(key);
    if (!group) {
      group = new ParticipantFiles(this, track.participantId, track.part, kind);
      this.groups.set(key, group);
    }
    return group;
  }

  addTrack(track: PublishedTrack): void {
    if (this.stopping) return;
    if (!this.participants.has(track.participantId)) {
      this.participants.set(track.participantId, track.part);
      void this.ready
        .then(() => addParticipant(this.deps.redis, this.context.clinic, this.recordingId, track.participantId, track.part))
        .catch((error: Error) => this.log().error({ err: error.message }, 'could not store recording participant'));
    }
    this.groupFor(track).add(track, true);
  }

  /** Metadata writes wait until the recording's own metadata exists. */
  afterStart<T>(write: () => Promise<T>): Promise<T> {
    return this.ready.then(write);
  }

  get isStopping(): boolean {
    return this.stopping !== null;
  }

  /** `trace`: that of what stopped it; without one (SIGTERM) a trace starts here, in the `recording stopped` line. */
  stop(reason: RoomRecordingStopReason, trace: TraceContext = continueTrace(undefined)): Promise<void> {
    const stoppedAt = Date.now();
    this.stopping ??= (async () => {
      const { redis, config, jobs, nodeId } = this.deps;
      const { clinic, consult } = this.context;
      await Promise.all([...this.groups.values()].map((group) => group.close()));
      await this.ready;
      const consent = (await readConsentEvents(redis, clinic, consult)).filter((event) => event.at <= stoppedAt);
      const meta = await getRecording(redis, clinic, this.recordingId);
      const purgeAt = stoppedAt + (await recordingRetentionMs(redis, clinic, consult, config.retentionMs));
      // The stop's writes go with the job: on a cluster they are on another shard, confirmed there too.
      const writeStop = async () => {
        await setRecordingFields(redis, clinic, this.recordingId, { status: 'stopped', stoppedAt: String(stoppedAt), stopReason: reason, consent: JSON.stringify(consent), purgeAt: String(purgeAt) });
        await appendRecord(redis, clinic, consult, 'recording-stopped', { node: nodeId, recording: this.recordingId, reason, files: String(meta?.files.length ?? 0) });
      };
      if (await jobs.finalise({ clinic, consult, recording: this.recordingId, ...tracedJob(trace) }, writeStop)) await markClosedOnNode(redis, nodeId, clinic, this.recordingId);
      else this.log().warn({ ...traceLogFields(trace) }, FINALISE_UNCONFIRMED);
      this.log().info({ reason, files: meta?.files.length ?? 0, ms: stoppedAt - this.startedAt, closingMs: Date.now() - stoppedAt, ...traceLogFields(trace) }, 'recording stopped');
    })()
      .catch((error: Error) => {
        this.metrics.failures.inc();
        this.log().error({ err: error.message }, 'recording did not stop cleanly; it is recovered when this node restarts');
      })
      .finally(() => this.onClosed());
    return this.stopping;
  }
}

type RoomRecordingStopReason = Parameters<RoomRecording['stop']>[0];

/** One participant's camera + microphone, or their screen share: a run of segments. */
class ParticipantFiles {
  private readonly tracks: PublishedTrack[] = [];
  private readonly unsubscribes = new Map<PublishedTrack, () => void>();
  private segment: OpenSegment | null = null;
  private nextIndex = 0;
  private restartTimer: NodeJS.Timeout | null = null;
  /** Segments being closed and encrypted. */
  private readonly closing = new Set<Promise<void>>();
  private closed = false;

  constructor(
    private readonly session: RoomRecordingSession,
    readonly participant: string,
    readonly part: ConsultRole,
    readonly kind: 'av' | 'screen',
  ) {}

  add(track: PublishedTrack, restartSoon: boolean): void {
    if (this.closed) return;
    // One audio and one video per file: a second of a kind replaces the first.
    const replaced = this.tracks.findIndex((t) => t.kind === track.kind);
    if (replaced >= 0) this.remove(this.tracks[replaced]!, false);
    this.tracks.push(track);
    this.unsubscribes.set(
      track,
      track.onEnded(() => this.remove(track, true)),
    );
    if (restartSoon) this.restartSoon();
  }

  private remove(track: PublishedTrack, restartSoon: boolean): void {
    const index = this.tracks.indexOf(track);
    if (index < 0) return;
    this.tracks.splice(index, 1);
    this.unsubscribes.get(track)?.();
    this.unsubscribes.delete(track);
    if (restartSoon) this.restartSoon();
  }

  private restartSoon(): void {
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      this.restart();
    }, RESTART_DEBOUNCE_MS);
  }

  /**
   * Opens a new segment with the tracks there are now (if any), then closes
   * the one that was open: the new file listens before the old one stops,
   * so nothing falls between them while the old one is encrypted.
   */
  restart(): void {
    const previous = this.segment;
    this.segment = null;
    if (!this.closed && !this.session.isStopping && this.tracks.length > 0) {
      try {
        this.openSegment();
      } catch (error) {
        this.session.metrics.failures.inc();
        this.session.log().error({ err: (error as Error).message, kind: this.kind }, 'could not open a recording segment');
      }
    }
    if (previous) this.closeInBackground(previous);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    for (const unsubscribe of this.unsubscribes.values()) unsubscribe();
    this.unsubscribes.clear();
    const open = this.segment;
    this.segment = null;
    if (open) this.closeInBackground(open);
    await Promise.all(this.closing);
  }

  private closeInBackground(segment: OpenSegment): void {
    const closing = this.closeSegment(segment).finally(() => this.closing.delete(closing));
    this.closing.add(closing);
  }

  private openSegment(): void {
    const { deps, context } = this.session;
    const index = this.nextIndex++;
    const name = segmentName(this.participant, this.kind, index);
    const tracks = [...this.tracks];
    const writer = new SegmentWriter(segmentTarget(deps, context, name), tracks, this.session.log().child({ segment: index }));
    const rollover = setTimeout(() => this.restart(), deps.config.segmentMs);
    this.segment = { writer, name, index, rollover };
    // Noted while open, so that a node that crashes can tell whose unfinished file it left.
    const open = { participant: this.participant, part: this.part, kind: this.kind, segment: index, codecs: tracks.map((t) => t.codec.mimeType), startedAt: writer.startedAt };
    void this.session
      .afterStart(() => deps.redis.hset(recordingKeys(context.clinic, context.recordingId).meta, `${OPEN_FIELD}${name}`, JSON.stringify(open)))
      .catch((error: Error) => this.session.log().warn({ err: error.message }, 'could not note the open segment'));
  }

  private async closeSegment(segment: OpenSegment): Promise<void> {
    clearTimeout(segment.rollover);
    const { deps, context, metrics } = this.session;
    const log = this.session.log().child({ segment: segment.index });
    try {
      const result = await segment.writer.stop();
      const file = await checkSegment(deps, context, segment.name, {
        participant: this.participant,
        part: this.part,
        kind: this.kind,
        segment: segment.index,
        codecs: segment.writer.tracks.map((t) => t.codec.mimeType),
        startedAt: result.startedAt,
        stoppedAt: result.stoppedAt,
        empty: result.packets === 0,
      });
      if (file) {
        await this.session.afterStart(() => addFile(deps.redis, context.clinic, context.recordingId, file));
        metrics.segments.inc();
        metrics.bytes.inc(file.bytes);
        log.info({ bytes: file.bytes, ms: file.stoppedAt - file.startedAt }, 'recording segment closed');
      }
      await this.session.afterStart(() => deps.redis.hdel(recordingKeys(context.clinic, context.recordingId).meta, `${OPEN_FIELD}${segment.name}`));
    } catch (error) {
      metrics.failures.inc();
      log.error({ err: (error as Error).message }, 'recording segment could not be closed; its encrypted file is kept for recovery');
    }
  }
}

type SegmentFacts = Omit<RecordingFile, 'name' | 'bytes' | 'sha256' | 'plainBytes' | 'plainSha256' | 'keyId'> & { empty: boolean };

function segmentTarget(deps: Pick<WeriftRecorderDeps, 'config'>, context: { clinic: string; recordingId: string; dir: string }, name: string): SegmentTarget {
  return { path: sealedPath(context.dir, name), key: deps.config.key, identity: { clinic: context.clinic, recording: context.recordingId, name } };
}

/**
 * A closed segment's file, read back and authenticated whole: its sizes and
 * checksums for the metadata. Null when the segment holds no media (its file
 * is deleted).
 */
async function checkSegment(
  deps: Pick<WeriftRecorderDeps, 'config'>,
  context: { clinic: string; recordingId: string; dir: string },
  name: string,
  facts: SegmentFacts,
): Promise<RecordingFile | null> {
  const target = segmentTarget(deps, context, name);
  if (facts.empty) {
    await rm(target.path, { force: true });
    return null;
  }
  const sealed = await verifyFile(target.path, target.key, target.identity);
  const { empty: _empty, ...rest } = facts;
  return { name, ...rest, bytes: sealed.bytes, sha256: sealed.sha256, plainBytes: sealed.plainBytes, plainSha256: sealed.plainSha256, keyId: deps.config.key.id };
}

/**
 * A segment file left by a node that died: complete already (it died after
 * closing it), or sealed again from what it holds (`recoverSegment`).
 * Plaintext `.webm` left by an older version that wrote segments in the
 * clear is encrypted (Duration corrected first) and removed. Null: no media.
 */
async function recoverSegmentFile(
  deps: Pick<WeriftRecorderDeps, 'config'>,
  context: { clinic: string; recordingId: string; dir: string },
  name: string,
  legacyPlaintext: boolean,
  facts: Omit<SegmentFacts, 'empty'>,
): Promise<RecordingFile | null> {
  const target = segmentTarget(deps, context, name);
  if (legacyPlaintext) {
    const plain = join(context.dir, name);
    const { blocks } = await fixWebmDurationInFile(plain).catch(() => ({ blocks: 1 }));
    if (blocks > 0) await encryptFile(plain, target.path, target.key, target.identity);
    await rm(plain, { force: true });
    return checkSegment(deps, context, name, { ...facts, empty: blocks === 0 });
  }
  let empty = false;
  try {
    await verifyFile(target.path, target.key, target.identity);
  } catch (error) {
    if (!(error instanceof RecordingError) || error.code !== 'RECORDING_CORRUPT') throw error;
    empty = (await recoverSegment(target)).blocks === 0;
  }
  return checkSegment(deps, context, name, { ...facts, empty });
}

async function recoverOne(deps: WeriftRecorderDeps, clinic: string, recording: string, metrics: WeriftRecorder['metrics']): Promise<void> {
  const { redis, config, jobs, nodeId, logger } = deps;
  const meta = await getRecording(redis, clinic, recording);
  if (!meta) {
    await markClosedOnNode(redis, nodeId, clinic, recording);
    return;
  }
  const dir = recordingDir(config.dir, clinic, recording);
  const fields = await redis.hgetall(recordingKeys(clinic, recording).meta);
  const names = await readdir(dir).catch(() => [] as string[]);
  let recovered = 0;
  for (const entry of names) {
    const legacyPlaintext = entry.endsWith('.webm');
    const name = legacyPlaintext ? entry : entry.endsWith('.webm.enc') ? entry.slice(0, -'.enc'.length) : null;
    // Half-sealed copies of an earlier recovery that was itself interrupted.
    if (name === null) {
      if (entry.endsWith('.recovering')) await rm(join(dir, entry), { force: true });
      continue;
    }
    const noted = fields[`${OPEN_FIELD}${name}`];
    if (!noted) {
      // A closed segment is in the metadata; anything else cannot be attributed to anyone: not kept.
      if (legacyPlaintext || !fields[`file:${name}`]) await rm(join(dir, entry), { force: true });
      continue;
    }
    const open = JSON.parse(noted) as Omit<RecordingFile, 'name' | 'bytes' | 'sha256' | 'plainBytes' | 'plainSha256' | 'keyId' | 'stoppedAt'>;
    const { mtimeMs } = await stat(join(dir, entry));
    const file = await recoverSegmentFile(deps, { clinic, recordingId: recording, dir }, name, legacyPlaintext, { ...open, stoppedAt: Math.round(mtimeMs) });
    if (file) {
      await addFile(redis, clinic, recording, file);
      metrics.segments.inc();
      recovered++;
    }
    await redis.hdel(recordingKeys(clinic, recording).meta, `${OPEN_FIELD}${name}`);
  }
  // Stopped here unless it was (its stop's writes may not be on a replica: the finalise confirms them all the same).
  const writeStop = async () => {
    if (meta.status !== 'recording') return;
    const stoppedAt = Date.now();
    await setRecordingFields(redis, clinic, recording, {
      status: 'stopped',
      stoppedAt: String(stoppedAt),
      stopReason: 'interrupted',
      consent: JSON.stringify(await readConsentEvents(redis, clinic, meta.consult)),
      purgeAt: String(stoppedAt + (await recordingRetentionMs(redis, clinic, meta.consult, config.retentionMs))),
    });
    await appendRecord(redis, clinic, meta.consult, 'recording-stopped', { node: nodeId, recording, reason: 'interrupted', files: String(meta.files.length + recovered) });
  };
  // Nothing traced stopped it: the finalise job starts a trace, logged here.
  const trace = continueTrace(undefined);
  if (await jobs.finalise({ clinic, consult: meta.consult, recording, ...tracedJob(trace) }, writeStop)) await markClosedOnNode(redis, nodeId, clinic, recording);
  else logger.warn({ clinic, recording, ...traceLogFields(trace) }, FINALISE_UNCONFIRMED);
  logger.warn({ clinic, recording, recovered, ...traceLogFields(trace) }, 'recording left open by a previous run of this node: closed and encrypted');
}

