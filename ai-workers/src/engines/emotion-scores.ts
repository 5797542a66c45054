import type { LabelProbability } from './audio-classifier.js';

/**
 * From an emotion classifier's labels to two numbers a clinician can follow:
 * arousal (how activated the voice sounds, after Russell's circumplex) and a
 * stress index (weighted towards anger, fear, frustration and sadness). The
 * tables cover the label sets of the public speech-emotion models
 * (IEMOCAP's neu/hap/ang/sad, RAVDESS's eight, and common synonyms); an
 * unknown label counts as middling. These are indicators for a clinician's
 * attention, not diagnoses.
 */
const CANONICAL: Record<string, string> = {
  neu: 'neutral',
  neutral: 'neutral',
  hap: 'happy',
  happy: 'happy',
  happiness: 'happy',
  joy: 'happy',
  ang: 'angry',
  angry: 'angry',
  anger: 'angry',
  sad: 'sad',
  sadness: 'sad',
  fea: 'fearful',
  fear: 'fearful',
  fearful: 'fearful',
  dis: 'disgust',
  disgust: 'disgust',
  disgusted: 'disgust',
  sur: 'surprised',
  surprise: 'surprised',
  surprised: 'surprised',
  cal: 'calm',
  calm: 'calm',
  exc: 'excited',
  excited: 'excited',
  fru: 'frustrated',
  frustrated: 'frustrated',
  frustration: 'frustrated',
  bored: 'bored',
  boredom: 'bored',
};

const AROUSAL: Record<string, number> = {
  angry: 0.9,
  fearful: 0.85,
  excited: 0.85,
  surprised: 0.8,
  happy: 0.7,
  frustrated: 0.7,
  disgust: 0.6,
  neutral: 0.35,
  sad: 0.25,
  bored: 0.15,
  calm: 0.1,
};

const STRESS: Record<string, number> = {
  angry: 1,
  fearful: 1,
  frustrated: 0.9,
  disgust: 0.7,
  sad: 0.6,
  surprised: 0.4,
  excited: 0.3,
  neutral: 0.1,
  bored: 0.1,
  happy: 0.05,
  calm: 0,
};

const UNKNOWN = 0.5;

export const canonicalLabel = (label: string) => CANONICAL[label.trim().toLowerCase()] ?? label.trim().toLowerCase();

const weighted = (labels: LabelProbability[], table: Record<string, number>) =>
  clamp01(labels.reduce((sum, { label, p }) => sum + p * (table[canonicalLabel(label)] ?? UNKNOWN), 0));

export const arousalOf = (labels: LabelProbability[]) => weighted(labels, AROUSAL);
export const instantStressOf = (labels: LabelProbability[]) => weighted(labels, STRESS);

const clamp01 = (v: number) => Math.min(1, Math.max(0, v));

/**
 * A speaker's stress index over time: an exponential moving average of each
 * utterance's stress, weighted by how long the utterance was (time constant
 * `tauSeconds` of speech), so one short outburst moves it less than a
 * sustained tone.
 */
export class StressSmoother {
  constructor(
    private readonly tauSeconds: number,
    private value: number | null = null,
  ) {}

  get current(): number | null {
    return this.value;
  }

  update(instant: number, durationSeconds: number): number {
    if (this.value === null) this.value = instant;
    else {
      const alpha = 1 - Math.exp(-Math.max(0, durationSeconds) / this.tauSeconds);
      this.value += alpha * (instant - this.value);
    }
    this.value = clamp01(this.value);
    return this.value;
  }
}
