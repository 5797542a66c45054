import { both, TEXT } from './i18n.js';
import { h } from './dom.js';

/** Two falling tones, the "ピンポーン" people know from station and clinic calls. */
const CHIME_TONES = [
  { hz: 784, at: 0, seconds: 1.1 },
  { hz: 622, at: 0.55, seconds: 1.4 },
];
const CHIME_SECONDS = 1.7;

/** One thing to say, in one language. */
export interface Spoken {
  text: string;
  /** BCP 47, e.g. ja-JP, en-US: picks the voice. */
  lang: string;
}

/** What Chromium and Firefox answer to navigator.getAutoplayPolicy (Chromium has it only behind a flag). */
type AutoplayPolicy = 'allowed' | 'allowed-muted' | 'disallowed';

/**
 * Chimes and spoken announcements, played one after another.
 *
 * Browsers keep a page silent until someone has clicked or tapped it: the
 * AudioContext stays "suspended" and speechSynthesis refuses to speak. A
 * display PC lifts the rule by starting Chromium in kiosk mode with
 * `--autoplay-policy=no-user-gesture-required` (web/README.md, "Display
 * PCs"). Whether sound is allowed is asked of the browser
 * (`navigator.getAutoplayPolicy('audiocontext')` where it exists) or found
 * by starting the AudioContext at once: it runs only where sound may play.
 * While it may not, a page shows the button from `soundButton()`.
 */
export class Announcer {
  private readonly context: AudioContext | null;
  private queue: Promise<void> = Promise.resolve();
  private readonly listeners = new Set<() => void>();

  constructor() {
    let context: AudioContext | null = null;
    try {
      context = new AudioContext();
    } catch {
      context = null; // no WebAudio: calls are still shown, just silent
    }
    this.context = context;
    context?.addEventListener('statechange', () => this.listeners.forEach((l) => l()));
    // Where the policy allows sound without a gesture this starts it; elsewhere it stays suspended (no error).
    if (context && autoplayPolicy() !== 'disallowed') void context.resume().catch(() => undefined);
  }

  /** True while the browser holds sound back until a user gesture. */
  get blocked(): boolean {
    const policy = autoplayPolicy();
    if (policy) return policy !== 'allowed';
    return this.context?.state === 'suspended';
  }

  onBlockedChange(listener: () => void): void {
    this.listeners.add(listener);
  }

  /** Must run inside a click or tap handler. */
  async enable(): Promise<void> {
    await this.context?.resume().catch(() => undefined);
    // Speaking once inside the gesture unlocks speechSynthesis for later announcements.
    if ('speechSynthesis' in window) speechSynthesis.speak(new SpeechSynthesisUtterance(' '));
    this.listeners.forEach((l) => l());
  }

  /** Queues a chime, then each text spoken in the order given; never overlaps the previous announcement. */
  announce(spoken: readonly Spoken[] = []): void {
    this.queue = this.queue.then(async () => {
      await this.chime();
      for (const line of spoken) await speak(line);
    });
  }

  private async chime(): Promise<void> {
    const context = this.context;
    if (!context || context.state !== 'running') return;
    const start = context.currentTime + 0.05;
    for (const tone of CHIME_TONES) {
      const oscillator = context.createOscillator();
      const gain = context.createGain();
      oscillator.type = 'sine';
      oscillator.frequency.value = tone.hz;
      gain.gain.setValueAtTime(0.0001, start + tone.at);
      gain.gain.exponentialRampToValueAtTime(0.5, start + tone.at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + tone.at + tone.seconds);
      oscillator.connect(gain).connect(context.destination);
      oscillator.start(start + tone.at);
      oscillator.stop(start + tone.at + tone.seconds + 0.05);
    }
    await sleep(CHIME_SECONDS * 1000);
  }
}

function autoplayPolicy(): AutoplayPolicy | null {
  const ask = (navigator as Navigator & { getAutoplayPolicy?: (type: 'audiocontext') => AutoplayPolicy }).getAutoplayPolicy;
  try {
    return ask ? ask.call(navigator, 'audiocontext') : null;
  } catch {
    return null;
  }
}

function speak({ text, lang }: Spoken): Promise<void> {
  if (!('speechSynthesis' in window)) return Promise.resolve();
  return new Promise((resolve) => {
    const utterance = new SpeechSynthesisUtterance(text);
    utterance.lang = lang;
    utterance.rate = 0.9;
    const prefix = lang.slice(0, 2);
    const voice = speechSynthesis.getVoices().find((v) => v.lang.replace('_', '-').startsWith(prefix));
    if (voice) utterance.voice = voice;
    // Some systems lack a voice for the language and never fire 'end': do not let one announcement hold up the rest.
    const fallback = setTimeout(resolve, 2000 + text.length * 120);
    const finish = () => {
      clearTimeout(fallback);
      resolve();
    };
    utterance.onend = finish;
    utterance.onerror = finish;
    speechSynthesis.speak(utterance);
  });
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The "音声を有効にする / Enable sound" button, shown only while the browser holds sound back. */
export function soundButton(announcer: Announcer): HTMLButtonElement {
  const button = h('button', { type: 'button', class: 'sound-button', id: 'enable-sound' }, both(TEXT.enableSound));
  const update = () => {
    button.hidden = !announcer.blocked;
  };
  button.addEventListener('click', () => void announcer.enable().then(update));
  announcer.onBlockedChange(update);
  update();
  return button;
}
