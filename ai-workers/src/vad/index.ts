/** `@clinic-hub/ai-workers/vad`: Silero voice activity detection on 16 kHz audio (loads onnxruntime), for the AI benchmark and end-to-end tests. */
export { SileroVad, SileroVadStream, VAD_FRAME_SAMPLES, bundledSileroModelPath } from './silero-vad.js';
export { detectSpeech, type SpeechSegment } from './detect-speech.js';
export { SpeechSegmenter, DEFAULT_SEGMENTER_OPTIONS, type SegmenterOptions, type SegmentEvent } from './speech-segmenter.js';
