import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { RecordingStatus } from '@clinic-hub/protocol';
import { continueTrace, traceLogFields, type TraceContext } from '@clinic-hub/platform/tracing';
import type { PublishedTrack, Recorder, RoomRecording } from '../engine/engine-types.js';
import type { Participant } from './participant.js';

export type RecordingStopReason = Parameters<RoomRecording['stop']>[0];

/**
 * When a room records. A clinician asks; the recording runs only while every
 * participant present has consented, and stops the moment one withdraws or
 * someone without consent joins. The request stands until a clinician stops
 * it, so the recording starts again (as a new recording) once everyone
 * present has consented again. How it records is the Recorder's business.
 *
 * A start or stop is logged with the trace of the signalling message that
 * caused it (`cause`), which the recording's jobs carry on. When nothing
 * traced caused it (a dropped connection, the hub ending the consultation,
 * SIGTERM) a trace starts at that point; its id is in the same log line.
 */
export class RecordingGate {
  private requested = false;
  private active: RoomRecording | null = null;
  private startedAt: number | null = null;

  constructor(
    private readonly clinic: string,
    private readonly consult: string,
    private readonly recorder: Recorder | null,
    private readonly logger: Logger,
  ) {}

  get available(): boolean {
    return this.recorder !== null;
  }

  get isRecording(): boolean {
    return this.active !== null;
  }

  setRequested(requested: boolean): void {
    this.requested = requested;
  }

  status(participants: Iterable<Participant>): RecordingStatus {
    const missingConsent = [...participants].filter((p) => !p.consent).map((p) => p.id);
    return {
      state: this.active ? 'recording' : this.requested ? 'waiting-consent' : 'off',
      missingConsent,
      recordingId: this.active?.recordingId ?? null,
      startedAt: this.active ? this.startedAt : null,
    };
  }

  /**
   * Brings the recording in line with the request and the consents of those
   * present. `stopReason` says why, should it have to stop.
   */
  evaluate(participants: Participant[], stopReason: RecordingStopReason, cause?: TraceContext): void {
    const everyoneConsents = participants.length > 0 && participants.every((p) => p.consent);
    if (this.active) {
      if (!this.requested || !everyoneConsents) this.stop(stopReason, cause);
      return;
    }
    if (this.requested && everyoneConsents && this.recorder) this.start(participants, cause);
  }

  /** A track published while recording (a participant joined with consent, or shared a screen). */
  addTrack(track: PublishedTrack): void {
    if (!this.active) return;
    try {
      this.active.addTrack(track);
    } catch (error) {
      this.logger.error({ err: error, recording: this.active.recordingId, track: track.id }, 'the recorder did not take a track');
    }
    track.requestKeyframe();
  }

  stop(reason: RecordingStopReason, cause?: TraceContext): void {
    const recording = this.active;
    if (!recording) return;
    this.active = null;
    this.startedAt = null;
    const trace = cause ?? continueTrace(undefined);
    this.logger.info({ recording: recording.recordingId, reason, ...traceLogFields(trace) }, 'recording stopped');
    recording.stop(reason, trace).catch((error: unknown) => this.logger.error({ err: error, recording: recording.recordingId }, 'the recording did not stop cleanly'));
  }

  private start(participants: Participant[], cause: TraceContext | undefined): void {
    const tracks = participants.flatMap((p) => [...p.transport.published.values()]);
    const recordingId = randomUUID();
    try {
      this.active = this.recorder!.start({ clinic: this.clinic, consult: this.consult, recordingId, tracks });
    } catch (error) {
      // A recorder that cannot start (disk, Redis) must not leave a request that retries on every change.
      this.requested = false;
      this.logger.error({ err: error, recording: recordingId }, 'the recording did not start');
      return;
    }
    this.startedAt = Date.now();
    this.logger.info({ recording: recordingId, tracks: tracks.length, ...traceLogFields(cause ?? continueTrace(undefined)) }, 'recording started');
    // The recording's files must start on a keyframe of every camera and screen.
    for (const track of tracks) track.requestKeyframe();
  }
}
