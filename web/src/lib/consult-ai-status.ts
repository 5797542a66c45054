/**
 * Whether the AI panel can expect anything, as the hub knows it
 * (`consult:ai-status`: the clinic's live transcripts setting, AI workers
 * with a live heartbeat): asked on every (re)subscribe and every 30 s, so a
 * worker that starts or stops shows within half a minute.
 */
import type { ConsultAiStatus } from '@clinic-hub/protocol';
import { AI_TEXT } from './consult-ai-text.js';
import { consultRequest, type ConsultSocket } from './consult-hub.js';
import type { Bilingual } from './i18n.js';

const RECHECK_MS = 30_000;

/** What to tell the clinician, or null when transcripts are on and a worker runs. */
export function aiStatusText(status: ConsultAiStatus): Bilingual | null {
  if (!status.liveTranscripts) return AI_TEXT.transcriptsOff;
  if (status.workers === 0) return AI_TEXT.noWorker;
  return null;
}

export function watchAiStatus(socket: ConsultSocket, consult: string, onStatus: (status: ConsultAiStatus) => void): { check(): void; stop(): void } {
  let stopped = false;
  const check = () => {
    if (stopped || !socket.connected) return;
    void consultRequest(socket, 'consult:ai-status', { consult })
      .then((ack) => {
        if (!stopped && ack.ok) onStatus(ack.ai);
      })
      .catch(() => undefined);
  };
  const timer = setInterval(check, RECHECK_MS);
  return {
    check,
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}
