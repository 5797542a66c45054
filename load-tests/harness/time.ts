/**
 * Wall-clock time in ms with sub-millisecond resolution. Every process of a
 * benchmark reads the same clock on one machine, so a send time taken in one
 * process and an arrival time taken in another can be subtracted.
 */
export const now = (): number => performance.timeOrigin + performance.now();

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Calls `act(k)` for k = 0 … total − 1 at `rate` a second on an absolute
 * schedule (a late call does not delay the next ones), and resolves one
 * period after the last: the measured window.
 */
export async function atRate(total: number, rate: number, act: (k: number) => void): Promise<{ start: number; end: number }> {
  const period = 1000 / rate;
  const start = now();
  for (let k = 0; k < total; k++) {
    const wait = start + k * period - now();
    if (wait > 0) await sleep(wait);
    act(k);
  }
  const end = start + total * period;
  const wait = end - now();
  if (wait > 0) await sleep(wait);
  return { start, end };
}
