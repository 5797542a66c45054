/**
 * Wall-clock time of a participant's samples: each audio entry anchors its
 * first sample at its `t`; samples count on from there at 16 kHz. Old
 * anchors are dropped once no open utterance can need them.
 */
export class SampleClock {
  private anchors: { sample: number; t: number }[] = [];

  anchor(sample: number, t: number): void {
    this.anchors.push({ sample, t });
  }

  toMs(sample: number): number {
    let anchor = this.anchors[0];
    if (!anchor) return Date.now();
    for (const a of this.anchors) {
      if (a.sample > sample) break;
      anchor = a;
    }
    return Math.round(anchor.t + ((sample - anchor.sample) * 1000) / 16000);
  }

  /** Forget anchors before `sample` (keeping the one that covers it). */
  prune(sample: number): void {
    let keep = 0;
    while (keep + 1 < this.anchors.length && this.anchors[keep + 1]!.sample <= sample) keep++;
    if (keep > 0) this.anchors = this.anchors.slice(keep);
  }
}
