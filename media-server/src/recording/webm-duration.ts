import { open, type FileHandle } from 'node:fs/promises';

/**
 * Sets a closed WebM file's Duration from its blocks.
 *
 * werift 0.25's writer computes the Duration at the end from each track's
 * last timestamp relative to the current cluster, but a track whose last
 * frame came before the cluster started (audio, when the final cluster opens
 * on a late video keyframe) keeps a value relative to the previous cluster:
 * the file then claims up to one keyframe interval more than it holds. Here
 * the file is walked (EBML header, Segment, Info, Cluster timecodes and
 * block timecodes; everything else skipped) and Duration is overwritten in
 * place with the end of its last block.
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

class Reader {
  private window = Buffer.alloc(0);
  private windowStart = 0;
  constructor(
    private readonly file: FileHandle,
    readonly size: number,
  ) {}

  async bytes(position: number, length: number): Promise<Buffer> {
    if (position < this.windowStart || position + length > this.windowStart + this.window.length) {
      const want = Math.max(length, 64 * 1024);
      const buffer = Buffer.alloc(Math.min(want, this.size - position));
      const { bytesRead } = await this.file.read(buffer, 0, buffer.length, position);
      this.window = buffer.subarray(0, bytesRead);
      this.windowStart = position;
    }
    return this.window.subarray(position - this.windowStart, position - this.windowStart + length);
  }
}

/** An EBML variable-size integer: its length and value (`marker` kept for ids); null size: unknown. */
async function vint(reader: Reader, position: number, keepMarker: boolean): Promise<{ length: number; value: number | null } | null> {
  if (position >= reader.size) return null;
  const first = (await reader.bytes(position, 1))[0]!;
  let length = 1;
  while (length <= 8 && !(first & (0x80 >> (length - 1)))) length++;
  if (length > 8 || position + length > reader.size) return null;
  const bytes = await reader.bytes(position, length);
  let value = keepMarker ? first : first & (0xff >> length);
  let allOnes = value === (0xff >> length);
  for (let i = 1; i < length; i++) {
    value = value * 256 + bytes[i]!;
    if (bytes[i] !== 0xff) allOnes = false;
  }
  return { length, value: !keepMarker && allOnes ? null : value };
}

export interface WebmTiming {
  /** ms, from the first block to the end of the last. */
  durationMs: number;
  /** What the header claimed before it was corrected. */
  headerDurationMs: number | null;
  blocks: number;
}

export async function fixWebmDuration(path: string): Promise<WebmTiming> {
  const file = await open(path, 'r+');
  try {
    const { size } = await file.stat();
    const reader = new Reader(file, size);
    let timecodeScale = 1_000_000;
    let durationAt: { position: number; length: number } | null = null;
    let headerDurationMs: number | null = null;
    let clusterTime = 0;
    let blocks = 0;
    /** Per track: the last two block times, to estimate the last block's length. */
    const lastTimes = new Map<number, [number, number]>();

    // The EBML header first, then the Segment's contents.
    let position = 0;
    while (position < size) {
      const id = await vint(reader, position, true);
      if (!id || id.value === null) break;
      const length = await vint(reader, position + id.length, false);
      if (!length) break;
      const dataAt = position + id.length + length.length;
      const dataSize = length.value;
      if (ENTERED.has(id.value as number)) {
        position = dataAt;
        continue;
      }
      if (dataSize === null || dataAt + dataSize > size) break;
      if (id.value === ID.TimecodeScale) timecodeScale = readUnsigned(await reader.bytes(dataAt, dataSize));
      else if (id.value === ID.Duration) {
        durationAt = { position: dataAt, length: dataSize };
        headerDurationMs = readFloat(await reader.bytes(dataAt, dataSize)) * (timecodeScale / 1_000_000);
      } else if (id.value === ID.Timecode) clusterTime = readUnsigned(await reader.bytes(dataAt, dataSize));
      else if (id.value === ID.SimpleBlock || id.value === ID.Block) {
        const track = await vint(reader, dataAt, false);
        if (track?.value != null) {
          const relative = (await reader.bytes(dataAt + track.length, 2)).readInt16BE(0);
          const time = clusterTime + relative;
          const previous = lastTimes.get(track.value);
          lastTimes.set(track.value, [previous ? previous[1] : time, time]);
          blocks++;
        }
      }
      position = dataAt + dataSize;
    }

    let endUnits = 0;
    for (const [before, last] of lastTimes.values()) endUnits = Math.max(endUnits, last + Math.max(0, last - before));
    const durationMs = endUnits * (timecodeScale / 1_000_000);
    if (durationAt && blocks > 0) {
      const value = Buffer.alloc(durationAt.length);
      if (durationAt.length === 4) value.writeFloatBE(endUnits, 0);
      else if (durationAt.length === 8) value.writeDoubleBE(endUnits, 0);
      else return { durationMs, headerDurationMs, blocks };
      await file.write(value, 0, value.length, durationAt.position);
    }
    return { durationMs, headerDurationMs, blocks };
  } finally {
    await file.close();
  }
}

function readUnsigned(bytes: Buffer): number {
  let value = 0;
  for (const byte of bytes) value = value * 256 + byte;
  return value;
}

function readFloat(bytes: Buffer): number {
  if (bytes.length === 4) return bytes.readFloatBE(0);
  if (bytes.length === 8) return bytes.readDoubleBE(0);
  return Number.NaN;
}
