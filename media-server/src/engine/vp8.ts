/**
 * Whether an RTP payload of VP8 (RFC 7741) starts a keyframe: the first packet
 * of a frame (S=1, partition 0) whose VP8 payload header has P=0.
 * A subscriber that joins mid-stream is held back until such a packet, so its
 * decoder starts on a picture it can decode.
 */
export function isVp8KeyframeStart(payload: Uint8Array): boolean {
  if (payload.length < 1) return false;
  const first = payload[0]!;
  const extended = (first & 0x80) !== 0;
  const startOfPartition = (first & 0x10) !== 0;
  const partitionId = first & 0x07;
  if (!startOfPartition || partitionId !== 0) return false;
  let offset = 1;
  if (extended) {
    if (payload.length < 2) return false;
    const x = payload[1]!;
    offset = 2;
    if (x & 0x80) {
      // Picture id: 7 bits, or 15 when its first bit (M) is set.
      if (payload.length <= offset) return false;
      offset += payload[offset]! & 0x80 ? 2 : 1;
    }
    if (x & 0x40) offset += 1; // TL0PICIDX
    if (x & 0x30) offset += 1; // TID/Y/KEYIDX
  }
  if (payload.length <= offset) return false;
  return (payload[offset]! & 0x01) === 0;
}
