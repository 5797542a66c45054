/**
 * The bitrate policy for publishers' video (engine/video-bitrate.ts) as a
 * pure function, and the REMB that carries it, read back by werift's parser.
 */
import { ReceiverEstimatedMaxBitrate, RtcpPacketConverter, RtcpPayloadSpecificFeedback } from 'werift';
import { describe, expect, it } from 'vitest';
import { loadMediaConfig } from '../src/config.js';
import { nextVideoBitrate, VIDEO_BITRATE_FLOOR_BPS } from '../src/engine/video-bitrate.js';
import { rembPacket } from '../src/engine/werift-published-track.js';

const CEILING = 1_500_000;

/** `steps` seconds of the policy from `start` with the same worst subscriber loss. */
function run(start: number, loss: number, steps: number): number {
  let bitrate = start;
  for (let i = 0; i < steps; i++) bitrate = nextVideoBitrate(bitrate, loss, CEILING);
  return bitrate;
}

describe('nextVideoBitrate', () => {
  it('stays at the ceiling while subscribers see no loss', () => {
    expect(nextVideoBitrate(CEILING, 0, CEILING)).toBe(CEILING);
    expect(run(CEILING, 0.01, 30)).toBe(CEILING);
  });

  it('lowers the rate by half the loss above 10%, keeps it between 2% and 10%', () => {
    expect(nextVideoBitrate(1_000_000, 0.2, CEILING)).toBe(900_000);
    expect(nextVideoBitrate(1_000_000, 0.5, CEILING)).toBe(750_000);
    expect(nextVideoBitrate(1_000_000, 0.05, CEILING)).toBe(1_000_000);
    expect(nextVideoBitrate(1_000_000, 0.1, CEILING)).toBe(1_000_000);
  });

  it('never goes below the floor, however bad the loss', () => {
    expect(run(CEILING, 0.4, 60)).toBe(VIDEO_BITRATE_FLOOR_BPS);
    expect(nextVideoBitrate(VIDEO_BITRATE_FLOOR_BPS, 1, CEILING)).toBe(VIDEO_BITRATE_FLOOR_BPS);
  });

  it('climbs back by 8% a second once the loss is gone, up to the ceiling', () => {
    expect(nextVideoBitrate(500_000, 0, CEILING)).toBe(540_000);
    // From the floor to the ceiling in about half a minute.
    expect(run(VIDEO_BITRATE_FLOOR_BPS, 0, 25)).toBeLessThan(CEILING);
    expect(run(VIDEO_BITRATE_FLOOR_BPS, 0, 31)).toBe(CEILING);
  });
});

describe('rembPacket', () => {
  it("carries the bitrate for the publisher's SSRC, as werift (and Chrome) read it", () => {
    for (const bitrate of [150_000, 1_500_000, 2_500_000, 262_143]) {
      const [parsed] = RtcpPacketConverter.deSerialize(rembPacket(1, 0xdeadbeef, bitrate).serialize());
      expect(parsed).toBeInstanceOf(RtcpPayloadSpecificFeedback);
      const remb = (parsed as RtcpPayloadSpecificFeedback).feedback as ReceiverEstimatedMaxBitrate;
      expect(remb).toBeInstanceOf(ReceiverEstimatedMaxBitrate);
      expect(remb.ssrcFeedbacks).toEqual([0xdeadbeef]);
      // An 18-bit mantissa: exact below 2^18, within 2^-17 above.
      expect(Math.abs(Number(remb.bitrate) - bitrate) / bitrate).toBeLessThan(1 / 2 ** 17);
    }
  });
});

describe('MEDIA_VIDEO_MAX_KBPS and MEDIA_SCREEN_MAX_KBPS', () => {
  const base = { REDIS_URL: 'redis://127.0.0.1:6379', MEDIA_TOKEN_SECRET: 'x'.repeat(32) };

  it('default to 1500 and 2500 kbit/s', () => {
    expect(loadMediaConfig(base).videoMaxBitrate).toEqual({ camera: 1_500_000, screen: 2_500_000 });
    expect(loadMediaConfig({ ...base, MEDIA_VIDEO_MAX_KBPS: '800', MEDIA_SCREEN_MAX_KBPS: '4000' }).videoMaxBitrate).toEqual({ camera: 800_000, screen: 4_000_000 });
  });

  it('refuses a value under the floor or not a number, naming the variable', () => {
    expect(() => loadMediaConfig({ ...base, MEDIA_VIDEO_MAX_KBPS: '100' })).toThrow(/MEDIA_VIDEO_MAX_KBPS: must be at least 150 \(kbit\/s\).*\(got "100"\)/);
    expect(() => loadMediaConfig({ ...base, MEDIA_SCREEN_MAX_KBPS: 'fast' })).toThrow(/MEDIA_SCREEN_MAX_KBPS: must be a whole number of kbit\/s \(got "fast"\)/);
  });
});
