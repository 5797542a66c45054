import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';

/**
 * A WebM's true Duration, from its blocks, read as the file is written.
 *
 * werift 0.25's writer computes the Duration at the end from each track's
 * last timestamp relative to the current cluster, but a track whose last
 * frame came before the cluster started (audio, when the final cluster opens
 * on a late video keyframe) keeps a value relative to the previous cluster:
 * the file then claims up to one keyframe interval more than it holds. The
 * scanner is fed the file's bytes in order (the recorder's output, before it
 * is encrypted), walks the EBML header, Segment, Info, Cluster timecodes and
 * block timecodes (everything else skipped without being kept), and says
 * where Duration is and what it should be: the end of the last block.
 */

const ID = {
  Segment: 0x18538067,
  Info: 0x1549a966,
  TimecodeScale: 0x2ad7b1,
  Duration: 0x4489,
  Cluster: 0x1f43b675,
  Timecode: 0xe7,
  SimpleBlock: 0xa3,
  BlockGroup: 0xa0,
  Block: 0xa1,
} as const;
/** Master elements whose children are walked as if they were siblings (clusters may have unknown size). */
const ENTERED = new Set<number>([ID.Segment, ID.Info, ID.Cluster, ID.BlockGroup]);
/** Elements whose first bytes are read: the values (at most 8 bytes), and a block's track number and timecode. */
const READ = new Set<number>([ID.TimecodeScale, ID.Duration, ID.Timecode, ID.SimpleBlock, ID.Block]);
const BLOCK_PREFIX_BYTES = 10;

/** An EBML variable-size integer at `at`: its length and value (`marker` kept for ids); null value: unknown size; null: not all there yet (or invalid: `invalid`). */
function vint(bytes: Buffer, at: number, keepMarker: boolean): { length: number; value: number | null } | 'invalid' | null {
  if (at >= bytes.length) return null;
  const first = bytes[at]!;
  let length = 1;
  while (length <= 8 && !(first & (0x80 >> (length - 1)))) length++;
  if (length > 8) return 'invalid';
  if (at + length > bytes.length) return null;
  let value = keepMarker ? first : first & (0xff >> length);
  let allOnes = value === 0xff >> length;
  for (let i = 1; i < length; i++) {
    value = value * 256 + bytes[at + i]!;
    if (bytes[at + i] !== 0xff) allOnes = false;
  }
  return { length, value: !keepMarker && allOnes ? null : value };
}

export interface WebmTiming {
  /** ms, from the first block to the end of the last. */
  durationMs: number;
  blocks: number;
}

export class WebmTimingScanner {
  private pending: Buffer = Buffer.alloc(0);
  /** File offset of pending[0]. */
  private offset = 0;
  /** Bytes of the current element's data still to pass over. */
  private skip = 0;
  private done = false;
  private timecodeScale = 1_000_000;
  private clusterTime = 0;
  private blocks = 0;
  /** Where Duration's value is in the file, and its size (4 or 8). */
  private durationAt: { position: number; length: number } | null = null;
  /** Per track: the last two block times, to estimate the last block's length. */
  private readonly lastTimes = new Map<number, [number, number]>();

  push(input: Buffer): void {
    if (this.done || input.length === 0) return;
    let bytes = input;
    if (this.skip > 0) {
      const passed = Math.min(this.skip, bytes.length);
      this.skip -= passed;
      this.offset += passed;
      bytes = bytes.subarray(passed);
      if (bytes.length === 0) return;
    }
    this.pending = this.pending.length > 0 ? Buffer.concat([this.pending, bytes]) : bytes;
    this.walk();
  }

  private walk(): void {
    const bytes = this.pending;
    let at = 0;
    while (!this.done) {
      const id = vint(bytes, at, true);
      if (id === null) break;
      if (id === 'invalid' || id.value === null) return this.stop();
      const size = vint(bytes, at + id.length, false);
      if (size === null) break;
      if (size === 'invalid') return this.stop();
      const dataAt = at + id.length + size.length;
      if (ENTERED.has(id.value)) {
        at = dataAt;
        continue;
      }
      // Only the entered elements may be of unknown size.
      if (size.value === null) return this.stop();
      if (READ.has(id.value)) {
        const wanted = Math.min(size.value, id.value === ID.SimpleBlock || id.value === ID.Block ? BLOCK_PREFIX_BYTES : size.value);
        if (dataAt + wanted > bytes.length) break;
        this.read(id.value, bytes.subarray(dataAt, dataAt + wanted), this.offset + dataAt, size.value);
      }
      const end = dataAt + size.value;
      if (end > bytes.length) {
        this.skip = end - bytes.length;
        at = bytes.length;
        break;
      }
      at = end;
    }
    this.offset += at;
    this.pending = Buffer.from(bytes.subarray(at));
  }

  private read(id: number, data: Buffer, position: number, size: number): void {
    if (id === ID.TimecodeScale) this.timecodeScale = readUnsigned(data);
    else if (id === ID.Duration) this.durationAt = { position, length: size };
    else if (id === ID.Timecode) this.clusterTime = readUnsigned(data);
    else {
      const track = vint(data, 0, false);
      if (!track || track === 'invalid' || track.value === null || data.length < track.length + 2) return;
      const time = this.clusterTime + data.readInt16BE(track.length);
      const previous = this.lastTimes.get(track.value);
      this.lastTimes.set(track.value, [previous ? previous[1] : time, time]);
      this.blocks++;
    }
  }

  private stop(): void {
    this.done = true;
    this.pending = Buffer.alloc(0);
  }

  /** The end of the last block, in TimecodeScale units. */
  private endUnits(): number {
    let end = 0;
    for (const [before, last] of this.lastTimes.values()) end = Math.max(end, last + Math.max(0, last - before));
    return end;
  }

  timing(): WebmTiming {
    return { durationMs: this.endUnits() * (this.timecodeScale / 1_000_000), blocks: this.blocks };
  }

  /**
   * Writes the true Duration into `head` (the file's first `head.length`
   * bytes) when Duration lies there and there were blocks; says whether it did.
   */
  correctDuration(head: Buffer): boolean {
    // Located in the head as it is now (werift rewrites Duration at the end).
    const located = new WebmTimingScanner();
    located.push(head);
    const at = located.durationAt;
    if (!at || this.blocks === 0 || at.position + at.length > head.length) return false;
    if (at.length === 4) head.writeFloatBE(this.endUnits(), at.position);
    else if (at.length === 8) head.writeDoubleBE(this.endUnits(), at.position);
    else return false;
    return true;
  }
}

function readUnsigned(bytes: Buffer): number {
  let value = 0;
  for (const byte of bytes) value = value * 256 + byte;
  return value;
}

/**
 * Corrects the Duration of a WebM file in place. Only for plaintext segments
 * an older version of the media-server left behind when it died (they are
 * encrypted and removed at once); segments are never written in plaintext now.
 */
export async function fixWebmDurationInFile(path: string): Promise<WebmTiming> {
  const scanner = new WebmTimingScanner();
  for await (const chunk of createReadStream(path)) scanner.push(chunk as Buffer);
  const file = await open(path, 'r+');
  try {
    const head = Buffer.alloc(Math.min((await file.stat()).size, 64 * 1024));
    await file.read(head, 0, head.length, 0);
    if (scanner.correctDuration(head)) await file.write(head, 0, head.length, 0);
  } finally {
    await file.close();
  }
  return scanner.timing();
}
