import { VAD_FRAME_SAMPLES, type SileroVad } from './silero-vad.js';
import { DEFAULT_SEGMENTER_OPTIONS, SpeechSegmenter, type SegmenterOptions } from './speech-segmenter.js';

export interface SpeechSegment {
  startSample: number;
  endSample: number;
}

/** Every utterance in a whole piece of 16 kHz audio (a recording, a test clip), with the streaming segmenter's rules. */
export async function detectSpeech(vad: SileroVad, samples: Float32Array, options: SegmenterOptions = DEFAULT_SEGMENTER_OPTIONS): Promise<SpeechSegment[]> {
  const stream = vad.createStream();
  const segmenter = new SpeechSegmenter(options);
  const segments: SpeechSegment[] = [];
  let start = -1;
  const take = (events: ReturnType<SpeechSegmenter['push']>) => {
    for (const event of events) {
      if (event.type === 'start') start = event.startSample;
      else if (event.type === 'end') segments.push({ startSample: start, endSample: event.endSample });
    }
  };
  for (let offset = 0; offset + VAD_FRAME_SAMPLES <= samples.length; offset += VAD_FRAME_SAMPLES) {
    const frame = samples.subarray(offset, offset + VAD_FRAME_SAMPLES);
    take(segmenter.push(frame, await stream.process(frame)));
  }
  take(segmenter.flush());
  return segments;
}
