/**
 * Fitting text into fixed boxes (the waiting-room display): a box's type is
 * scaled down through its `--fit` custom property (its CSS sizes are
 * `calc(… * var(--fit, 1))`) until nothing inside it overflows, and parts
 * that may go (the later "next" numbers) are dropped when even the smallest
 * type does not fit. Nothing is ever clipped: what shows, shows whole.
 */

/** One pixel of slack: scroll sizes are rounded. */
const SLACK = 1;
const STEPS = 7;

/**
 * True when the content of `box` is larger than the box, or a word is wider
 * than the element it is in (a name that cannot wrap may stick out into the
 * box's padding, where the box's own scroll size does not see it).
 */
export function overflows(box: HTMLElement): boolean {
  if (box.scrollHeight > box.clientHeight + SLACK || box.scrollWidth > box.clientWidth + SLACK) return true;
  for (const element of box.querySelectorAll<HTMLElement>('*')) {
    if (element.scrollWidth > element.clientWidth + SLACK && getComputedStyle(element).display !== 'inline') return true;
  }
  return false;
}

export interface FitOptions {
  /** The smallest scale allowed (the box's smallest text must still read at it). */
  min: number;
  /** Removes one optional part; false when nothing more can go. */
  drop?: () => boolean;
}

/** The largest scale in [min, 1] at which `box` does not overflow, set as its `--fit`; returns it. */
export function fitBox(box: HTMLElement, options: FitOptions): number {
  const set = (scale: number) => box.style.setProperty('--fit', scale.toFixed(3));
  set(1);
  if (!overflows(box)) return 1;
  for (;;) {
    set(options.min);
    if (!overflows(box) || !options.drop?.()) break;
    set(1);
    if (!overflows(box)) return 1;
  }
  let low = options.min;
  let high = 1;
  for (let i = 0; i < STEPS; i++) {
    const mid = (low + high) / 2;
    set(mid);
    if (overflows(box)) high = mid;
    else low = mid;
  }
  set(low);
  return low;
}
