/**
 * Wall-clock time in ms with sub-millisecond resolution. Every process of a
 * benchmark reads the same clock on one machine, so a send time taken in one
 * process and an arrival time taken in another can be subtracted.
 */
export const now = (): number => performance.timeOrigin + performance.now();

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
