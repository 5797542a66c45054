/**
 * 48 kHz → 16 kHz: a linear-phase low-pass FIR (windowed sinc, Kaiser
 * window) evaluated only at every third input sample — the polyphase form
 * of filter-then-decimate, so the filter costs TAPS multiplies per output
 * sample. Passband to 7 kHz (speech needs no more), stopband from 8.5 kHz
 * at about 80 dB down: what lies between 8 and 8.5 kHz folds to 7.5–8 kHz,
 * outside the band kept. Streaming: the last TAPS − 1 inputs are carried
 * from one call to the next.
 */

export const DECIMATION = 3;
const INPUT_RATE = 48_000;
const PASS_HZ = 7_000;
const STOP_HZ = 8_500;
const ATTENUATION_DB = 80;

function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  for (let k = 1; k < 50; k++) {
    term *= (x / (2 * k)) ** 2;
    sum += term;
    if (term < 1e-12 * sum) break;
  }
  return sum;
}

/** Kaiser's formulas for length and β from the transition width and attenuation. */
export function designLowPass(): Float32Array {
  const transition = (2 * Math.PI * (STOP_HZ - PASS_HZ)) / INPUT_RATE;
  let taps = Math.ceil((ATTENUATION_DB - 8) / (2.285 * transition)) + 1;
  if (taps % 2 === 0) taps++;
  const beta = 0.1102 * (ATTENUATION_DB - 8.7);
  const cutoff = (PASS_HZ + STOP_HZ) / 2 / INPUT_RATE;
  const middle = (taps - 1) / 2;
  const coefficients = new Float32Array(taps);
  let sum = 0;
  for (let n = 0; n < taps; n++) {
    const x = n - middle;
    const sinc = x === 0 ? 2 * cutoff : Math.sin(2 * Math.PI * cutoff * x) / (Math.PI * x);
    const window = besselI0(beta * Math.sqrt(1 - (x / middle) ** 2)) / besselI0(beta);
    coefficients[n] = sinc * window;
    sum += coefficients[n]!;
  }
  // Unity gain at 0 Hz.
  for (let n = 0; n < taps; n++) coefficients[n] = coefficients[n]! / sum;
  return coefficients;
}

const COEFFICIENTS = designLowPass();

export class Decimator {
  static readonly taps = COEFFICIENTS.length;
  /** Latency the filter adds, in output samples. */
  static readonly delaySamples = (COEFFICIENTS.length - 1) / 2 / DECIMATION;
  private history = new Float32Array(COEFFICIENTS.length - 1);
  /** Inputs to skip before the next output (0..2). */
  private phase = 0;

  process(input: Float32Array): Float32Array {
    const taps = COEFFICIENTS.length;
    const carried = this.history.length;
    const all = new Float32Array(carried + input.length);
    all.set(this.history, 0);
    all.set(input, carried);
    const outputs: number[] = [];
    // The output at input index i uses inputs i - taps + 1 … i (all[] is offset by `carried`).
    for (let i = this.phase; i < input.length; i += DECIMATION) {
      const end = i + carried;
      let acc = 0;
      for (let k = 0; k < taps; k++) acc += COEFFICIENTS[k]! * all[end - k]!;
      outputs.push(acc);
    }
    const consumed = input.length - this.phase;
    this.phase = consumed <= 0 ? -consumed : (DECIMATION - (consumed % DECIMATION)) % DECIMATION;
    this.history = all.slice(all.length - carried);
    return Float32Array.from(outputs);
  }

  reset(): void {
    this.history.fill(0);
    this.phase = 0;
  }
}
