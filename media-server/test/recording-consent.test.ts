/**
 * When a room records: the consent state machine against a real media-server
 * (each engine) and Redis, with Node peers sending real media, and a Recorder that notes
 * what the room asks of it (the real one — files, encryption — has its own
 * tests in recording tests). What is checked here is that recording runs
 * only while everyone present has consented, and the session record.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { consultKeys, type RecordingStatus, type ServerSignal } from '@clinic-hub/protocol';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';
import type { PublishedTrack, Recorder, RoomRecording } from '../src/engine/engine-types.js';
import type { RunningMediaServer } from '../src/media-server.js';
import { MEDIA_TEST_ENGINES, roomToken, startTestMediaServer } from '@clinic-hub/test-kit/media-node';
import { joinPeer, type TestPeer } from '@clinic-hub/test-kit/engine-peer';
import { makeEncodedMedia, type EncodedMedia } from '@clinic-hub/test-kit/recording-media';

type StopReason = Parameters<RoomRecording['stop']>[0];

/** Notes each recording: the tracks it was given, the packets they carried, why it stopped. */
class NotingRecorder implements Recorder {
  readonly recordings: { id: string; tracks: PublishedTrack[]; packets: number; stopped: StopReason | null }[] = [];
  start(context: { clinic: string; consult: string; recordingId: string; tracks: PublishedTrack[] }): RoomRecording {
    const entry = { id: context.recordingId, tracks: [...context.tracks], packets: 0, stopped: null as StopReason | null };
    this.recordings.push(entry);
    const listen = (track: PublishedTrack) => track.onRtp(() => (entry.packets += entry.stopped ? 0 : 1));
    context.tracks.forEach(listen);
    return {
      recordingId: context.recordingId,
      addTrack(track) {
        entry.tracks.push(track);
        listen(track);
      },
      async stop(reason) {
        entry.stopped = reason;
      },
    };
  }
}

let media: EncodedMedia;
let mediaDir: string;

beforeAll(async () => {
  mediaDir = mkdtempSync(joinPath(tmpdir(), 'consent-media-'));
  media = await makeEncodedMedia(mediaDir, { seconds: 3, keyframeEverySeconds: 1 });
});

afterAll(() => rmSync(mediaDir, { recursive: true, force: true }));

function latestRecording(peer: TestPeer): RecordingStatus {
  const messages = peer.messages.filter((m): m is Extract<ServerSignal, { type: 'recording' | 'joined' }> => m.type === 'recording' || m.type === 'joined');
  return messages[messages.length - 1]!.recording;
}

async function recordingState(peer: TestPeer, state: RecordingStatus['state']): Promise<RecordingStatus> {
  await peer.until(() => latestRecording(peer).state === state, 10_000, `recording state ${state}`);
  return latestRecording(peer);
}

async function ok(peer: TestPeer, message: Record<string, unknown>): Promise<void> {
  const reply = await peer.request(message);
  expect(reply, JSON.stringify(message)).toMatchObject({ type: 'ack' });
}

describe.each(MEDIA_TEST_ENGINES)('recording and consent ($name)', ({ name: engine, env }) => {
  let redisServer: TestRedis;
  let redis: Redis;
  let server: RunningMediaServer;
  let plain: RunningMediaServer;
  const recorder = new NotingRecorder();
  const peers: TestPeer[] = [];

  beforeAll(async () => {
    redisServer = await startTestRedis();
    redis = new Redis(redisServer.url);
    [server, plain] = await Promise.all([
      startTestMediaServer({ env, redisUrl: redisServer.url, nodeId: 'media-rec', recorder }),
      startTestMediaServer({ env, redisUrl: redisServer.url, nodeId: 'media-plain' }),
    ]);
  });

  afterEach(async () => {
    await Promise.all(peers.splice(0).map((peer) => peer.close()));
  });

  afterAll(async () => {
    await server?.close();
    await plain?.close();
    redis?.disconnect();
    await redisServer?.cleanup();
  });

  async function join(consult: string, sub: string, part: 'doctor' | 'patient' | 'nurse' | 'family', on = server): Promise<TestPeer> {
    const peer = await joinPeer(engine, on.url, roomToken({ sub, part, consult }), { media });
    peers.push(peer);
    return peer;
  }

  it('records only while everyone present has consented, and writes each consent to the session record', { timeout: 60_000 }, async () => {
    const consult = 'consent-room-1';
    const doctor = await join(consult, 'doctor-c', 'doctor');
    const patient = await join(consult, 'patient-c', 'patient');
    await doctor.until(() => doctor.packetsOf('video') > 0 && patient.packetsOf('video') > 0, 10_000, 'video both ways');

    expect(errorCode(await patient.request({ type: 'recording', action: 'start' }))).toBe('AUTH_FORBIDDEN');

    // The doctor asks; nobody has consented yet: it waits, and says for whom.
    await ok(doctor, { type: 'recording', action: 'start' });
    let status = await recordingState(patient, 'waiting-consent');
    expect(status.missingConsent.sort()).toEqual(['doctor-c', 'patient-c']);
    await ok(doctor, { type: 'consent', granted: true });
    status = await recordingState(doctor, 'waiting-consent');
    expect(status.missingConsent).toEqual(['patient-c']);
    expect(recorder.recordings).toHaveLength(0);

    // The last consent starts it, with every track in the room, from a fresh keyframe
    // (past the 250 ms in which keyframe requests to one publisher are folded together).
    await new Promise((r) => setTimeout(r, 300));
    const requestsBefore = { doctor: doctor.keyframeRequests, patient: patient.keyframeRequests };
    await ok(patient, { type: 'consent', granted: true });
    status = await recordingState(doctor, 'recording');
    expect(status.recordingId).toBe(recorder.recordings[0]!.id);
    expect(recorder.recordings[0]!.tracks.map((t) => `${t.participantId}:${t.source}`).sort()).toEqual(['doctor-c:camera', 'doctor-c:mic', 'patient-c:camera', 'patient-c:mic']);
    await doctor.until(() => doctor.keyframeRequests > requestsBefore.doctor && patient.keyframeRequests > requestsBefore.patient, 5000, 'a keyframe request to each camera');
    await doctor.until(() => recorder.recordings[0]!.packets > 100, 10_000, 'packets recorded');

    // Withdrawing stops it at once; consenting again starts a new recording.
    await ok(patient, { type: 'consent', granted: false });
    await recordingState(doctor, 'waiting-consent');
    expect(recorder.recordings[0]!.stopped).toBe('consent-withdrawn');
    await ok(patient, { type: 'consent', granted: true });
    await recordingState(doctor, 'recording');
    expect(recorder.recordings).toHaveLength(2);

    // Someone without consent joining stops it; when they leave, it starts again.
    const family = await join(consult, 'family-c', 'family');
    status = await recordingState(doctor, 'waiting-consent');
    expect(status.missingConsent).toEqual(['family-c']);
    expect(recorder.recordings[1]!.stopped).toBe('participant-without-consent');
    await family.leave();
    await recordingState(doctor, 'recording');
    expect(recorder.recordings).toHaveLength(3);

    // A clinician stops it.
    await ok(doctor, { type: 'recording', action: 'stop' });
    await recordingState(patient, 'off');
    expect(recorder.recordings[2]!.stopped).toBe('requested');
    expect(recorder.recordings.every((r) => r.stopped !== null)).toBe(true);

    const record = (await redis.xrange(consultKeys('testclinic', consult).record, '-', '+')).map(([, f]) => fieldsOf(f));
    expect(record.filter((e) => e.type!.startsWith('consent')).map((e) => `${e.type} ${e.participant} ${e.part}`)).toEqual([
      'consent-granted doctor-c doctor',
      'consent-granted patient-c patient',
      'consent-withdrawn patient-c patient',
      'consent-granted patient-c patient',
    ]);
    expect(JSON.stringify(record)).not.toContain('Name of');
  });

  it('keeps a consent over a dropped connection and rejoin; the recording picks up the new tracks', { timeout: 60_000 }, async () => {
    const consult = 'consent-room-2';
    const doctor = await join(consult, 'doctor-d', 'doctor');
    let patient = await join(consult, 'patient-d', 'patient');
    await ok(doctor, { type: 'consent', granted: true });
    await ok(patient, { type: 'consent', granted: true });
    await ok(doctor, { type: 'recording', action: 'start' });
    await recordingState(doctor, 'recording');
    const recording = recorder.recordings[recorder.recordings.length - 1]!;
    const patientTracks = () => recording.tracks.filter((t) => t.participantId === 'patient-d').length;
    // The first connection's microphone and camera are in the recording before it drops: tracks join a
    // recording when their media arrives, which on a loaded machine can be after recording started.
    await patient.until(() => patientTracks() === 2, 10_000, 'the first connection\'s tracks recorded');

    await patient.close();
    patient = await join(consult, 'patient-d', 'patient');
    expect(patient.joined?.self.consent).toBe(true);
    expect(latestRecording(patient).state).toBe('recording');
    await patient.until(() => patientTracks() === 4, 10_000, 'the new tracks added');
    expect(recording.stopped).toBeNull();
  });

  it("refuses to start recording where the clinic does not allow it (its consultation's meta rec \"0\"), and still records consent", async () => {
    const consult = 'consent-room-norec';
    // What the hub writes at admission for a clinic with recording.allowed false.
    await redis.hset(consultKeys('testclinic', consult).meta, 'status', 'waiting', 'rec', '0');
    const doctor = await join(consult, 'doctor-n', 'doctor');
    expect(errorCode(await doctor.request({ type: 'recording', action: 'start' }))).toBe('RECORDING_NOT_ALLOWED');
    await ok(doctor, { type: 'recording', action: 'stop' });
    await ok(doctor, { type: 'consent', granted: true });
    expect(latestRecording(doctor).state).not.toBe('recording');
    // A consultation the clinic allows to be recorded, on the same media-server: the start is taken.
    await redis.hset(consultKeys('testclinic', 'consent-room-rec').meta, 'status', 'waiting', 'rec', '1');
    const other = await join('consent-room-rec', 'doctor-r', 'doctor');
    await ok(other, { type: 'recording', action: 'start' });
  });

  it('refuses recording on a media-server without a recorder (RECORDING_KEY unset)', async () => {
    const doctor = await join('consent-room-3', 'doctor-p', 'doctor', plain);
    expect(errorCode(await doctor.request({ type: 'recording', action: 'start' }))).toBe('RECORDING_KEY_MISSING');
    // Consent itself is still recorded.
    await ok(doctor, { type: 'consent', granted: true });
  });
});

function errorCode(reply: ServerSignal): string {
  return reply.type === 'error' ? reply.code : reply.type;
}

function fieldsOf(list: string[]): Record<string, string> {
  const fields: Record<string, string> = {};
  for (let i = 0; i + 1 < list.length; i += 2) fields[list[i]!] = list[i + 1]!;
  return fields;
}
