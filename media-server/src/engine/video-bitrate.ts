/**
 * What each publisher's video may send, told to the publisher's browser as a
 * REMB (receiver estimated maximum bitrate) about once a second. Without any
 * bandwidth feedback Chrome starts a camera at 300 kbit/s and creeps up by
 * about 8% a second on its own; with a REMB it goes to the value at once,
 * and never above it.
 *
 * The policy is GCC's loss-based controller applied to what the SFU hears
 * from the subscribers:
 * - start at the ceiling (MEDIA_VIDEO_MAX_KBPS for a camera,
 *   MEDIA_SCREEN_MAX_KBPS for a screen);
 * - once a second, take the worst loss any subscriber of the track reports
 *   on its own downlink (smoothed receiver reports, loss already on the
 *   publisher's uplink not counted: `SubscriberLink`);
 * - above 10% loss, lower the rate by half the loss (20% loss: −10%);
 *   under 2%, raise it by 8%; in between, keep it;
 * - never above the ceiling, never below the floor (150 kbit/s, a small but
 *   usable picture).
 * There is one stream per publisher (no simulcast), so a subscriber with a
 * poor link slows the video everyone else gets, down to the floor at most;
 * one that is worse still has its video held back (`SubscriberLink`) and
 * keeps its audio.
 */

/** The lowest rate ever asked of a publisher's video, in bits per second. */
export const VIDEO_BITRATE_FLOOR_BPS = 150_000;
/** Subscriber loss above which the rate goes down, and below which it goes up. */
const LOSS_DECREASE_ABOVE = 0.1;
const LOSS_INCREASE_BELOW = 0.02;
/** Growth per step (a step is about a second) while subscribers see no loss to speak of. */
const INCREASE_FACTOR = 1.08;

/** The next rate, in bits per second, for a video track now asked to send `currentBps` whose worst subscriber reports `worstLoss` (0..1). */
export function nextVideoBitrate(currentBps: number, worstLoss: number, ceilingBps: number): number {
  const floor = Math.min(VIDEO_BITRATE_FLOOR_BPS, ceilingBps);
  let next = currentBps;
  if (worstLoss > LOSS_DECREASE_ABOVE) next = currentBps * (1 - 0.5 * Math.min(worstLoss, 1));
  else if (worstLoss < LOSS_INCREASE_BELOW) next = currentBps * INCREASE_FACTOR;
  return Math.round(Math.min(ceilingBps, Math.max(floor, next)));
}
