/** `@clinic-hub/ai-workers/audio`: 16 kHz PCM and WAV helpers (no onnxruntime here), for tests and the benchmark that feed the workers audio. */
export { samplesIn, s16leToFloat32, float32ToS16le, concatFloat32, rms } from './pcm.js';
export { parseWav, wavToMono16k, encodeWav, type WavAudio } from './wav.js';
