import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Redis } from 'ioredis';
import type { ConsultRole, RecordingFile } from '@clinic-hub/protocol';
import { addFile, addParticipant, createRecordingMeta, encryptFile, parseRecordingKey, recordingDir, sealedPath, setRecordingFields, type RecordingKey } from '@clinic-hub/recordings';

const run = promisify(execFile);

/** A fresh RECORDING_KEY: its text (the variable's value) and the parsed key. */
export function newRecordingKey(): { text: string; key: RecordingKey } {
  const text = randomBytes(32).toString('base64');
  return { text, key: parseRecordingKey(text)! };
}

/** A short real WebM (VP8 + Opus) made by ffmpeg, for export tests that need no WebRTC. */
export async function makeWebm(path: string, seconds = 3): Promise<Buffer> {
  await run('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', `testsrc=size=160x120:rate=15:duration=${seconds}`,
    '-f', 'lavfi', '-i', `sine=frequency=440:duration=${seconds}`,
    '-c:v', 'libvpx', '-b:v', '100k', '-c:a', 'libopus', '-shortest', path,
  ]);
  return readFileSync(path);
}

export interface SeededFile {
  participant: string;
  part: ConsultRole;
  plain: Buffer;
  kind?: 'av' | 'screen';
}

/**
 * A stopped recording as the media-server leaves it: encrypted files under
 * RECORDINGS_DIR and its metadata in Redis, written with the recorder's own
 * cipher and store functions.
 */
export async function seedRecording(options: {
  redis: Redis;
  dir: string;
  key: RecordingKey;
  clinic: string;
  consult: string;
  recording: string;
  files: SeededFile[];
}): Promise<RecordingFile[]> {
  const { redis, dir, key, clinic, consult, recording } = options;
  const folder = recordingDir(dir, clinic, recording);
  mkdirSync(folder, { recursive: true });
  const startedAt = Date.now() - 60_000;
  await createRecordingMeta(redis, { id: recording, clinic, consult, node: 'media-test', startedAt });
  const files: RecordingFile[] = [];
  for (const [index, seeded] of options.files.entries()) {
    const name = `p${index}-${createHash('sha256').update(seeded.participant).digest('hex').slice(0, 8)}-${seeded.kind ?? 'av'}-000.webm`;
    const plainPath = join(folder, name);
    writeFileSync(plainPath, seeded.plain);
    const facts = await encryptFile(plainPath, sealedPath(folder, name), key, { clinic, recording, name });
    rmSync(plainPath);
    const file: RecordingFile = {
      name,
      participant: seeded.participant,
      part: seeded.part,
      kind: seeded.kind ?? 'av',
      segment: 0,
      codecs: ['audio/opus', 'video/VP8'],
      startedAt,
      stoppedAt: startedAt + 3000,
      ...facts,
      keyId: key.id,
    };
    await addParticipant(redis, clinic, recording, seeded.participant, seeded.part);
    await addFile(redis, clinic, recording, file);
    files.push(file);
  }
  await setRecordingFields(redis, clinic, recording, {
    status: 'final',
    stoppedAt: String(startedAt + 3000),
    stopReason: 'requested',
    finalisedAt: String(startedAt + 4000),
    purgeAt: String(startedAt + 30 * 86_400_000),
    consent: JSON.stringify(
      options.files.map((f, i) => ({ id: `${startedAt - 1000 + i}-0`, type: 'consent-granted', at: startedAt - 1000 + i, fields: { type: 'consent-granted', participant: f.participant, part: f.part } })),
    ),
  });
  return files;
}
