/**
 * The hub's side of video consultations, for any page: the `/consult`
 * connection, requests with acks, following a consultation's AI results
 * (clinicians only), and opening the consultation page with a room pass.
 * docs/consultations.md ("Admission") describes the events.
 */
import type { Socket } from 'socket.io-client';
import {
  CONSULT_NAMESPACE,
  consultPagePath,
  type AiResultMessage,
  type ConsultClientToServer,
  type ConsultEnded,
  type ConsultServerToClient,
  type ProtocolError,
  type RoomPass,
} from '@clinic-hub/protocol';
import { RequestTimeoutError, newRequestId, openHubSocket } from './connection.js';

export type ConsultSocket = Socket<ConsultServerToClient, ConsultClientToServer>;
export type ConsultAckOf<E extends keyof ConsultClientToServer> = Parameters<Parameters<ConsultClientToServer[E]>[1]>[0];
export type ConsultPayloadOf<E extends keyof ConsultClientToServer> = Parameters<ConsultClientToServer[E]>[0];

/** Socket.IO on the consult namespace of the hub that served the page, with a hub token (not a room token). */
export function openConsultSocket(token: string, clinic?: string | null): ConsultSocket {
  return openHubSocket<ConsultSocket>(CONSULT_NAMESPACE, token, clinic);
}

/** Sends one consult event and resolves with the hub's ack; rejects with RequestTimeoutError when none comes in time. */
export function consultRequest<E extends keyof ConsultClientToServer>(
  socket: ConsultSocket,
  event: E,
  payload: ConsultPayloadOf<E>,
  timeoutMs = 5000,
): Promise<ConsultAckOf<E>> {
  const timed = socket.timeout(timeoutMs) as unknown as { emit(event: string, payload: unknown, ack: (err: Error | null, reply: unknown) => void): void };
  return new Promise((resolve, reject) => {
    timed.emit(event, payload, (err, reply) => (err ? reject(new RequestTimeoutError(event)) : resolve(reply as ConsultAckOf<E>)));
  });
}

/**
 * Admits with one requestId and, when the ack is lost, asks again with the
 * same one: the hub then returns the first admission instead of calling a
 * second patient.
 */
export async function admitPatient(socket: ConsultSocket, payload: Omit<ConsultPayloadOf<'consult:admit'>, 'requestId'>, attempts = 3): Promise<ConsultAckOf<'consult:admit'>> {
  const requestId = newRequestId();
  for (let attempt = 1; ; attempt++) {
    try {
      return await consultRequest(socket, 'consult:admit', { ...payload, requestId });
    } catch (error) {
      if (attempt >= attempts || !(error instanceof RequestTimeoutError)) throw error;
    }
  }
}

/**
 * The consultation page for a clinician: the pass (`media`, `token`), the
 * clinician's hub token (`hub`, and `clinic` for an all-clinics admin), with
 * which the page follows the AI results (`followConsultAi`), and the ticket
 * (`ticket`), whose chat with the patient the page shows.
 */
export function clinicianPagePath(pass: Pick<RoomPass, 'mediaUrl' | 'token'>, hubToken: string, ticketId: string, clinic?: string | null): string {
  const extra = new URLSearchParams({ hub: hubToken, ticket: ticketId, ...(clinic ? { clinic } : {}) });
  return `${consultPagePath(pass)}&${extra.toString()}`;
}

/**
 * The consultation page for the patient: the pass, and the patient's own
 * hub token and ticket for their chat with the clinic (a patient token is
 * never shown AI results: the hub refuses it, and the page does not ask).
 */
export function patientPagePath(pass: Pick<RoomPass, 'mediaUrl' | 'token'>, hubToken: string, ticketId: string): string {
  return `${consultPagePath(pass)}&${new URLSearchParams({ hub: hubToken, ticket: ticketId }).toString()}`;
}

/**
 * Opens the consultation page in a new tab with a pass fetched on the click:
 * the tab is opened first (in the click, so no popup blocker stops it) and
 * sent to the page once the pass is there; closed again if none comes.
 * Returns the error the hub gave, or null.
 */
export async function openConsultPage(fetchPath: () => Promise<{ ok: true; path: string } | { ok: false; error: ProtocolError }>): Promise<ProtocolError | null> {
  const tab = window.open('about:blank', '_blank');
  let result: Awaited<ReturnType<typeof fetchPath>>;
  try {
    result = await fetchPath();
  } catch (error) {
    tab?.close();
    throw error;
  }
  if (!result.ok) {
    tab?.close();
    return result.error;
  }
  const url = new URL(result.path, location.href).href;
  if (tab) tab.location.href = url;
  else location.assign(url);
  return null;
}

export interface AiFollower {
  /** Stops following (unsubscribes while connected). */
  stop(): void;
}

/**
 * Follows a consultation's AI results as a clinician: subscribes on every
 * (re)connect, then reads what it missed from the history (after the last
 * entry it has), so a reconnect loses nothing. Final transcripts and emotion
 * scores are delivered once even when they arrive both live and in the
 * history; partial transcripts are delivered as they come (a later partial
 * or the final of the same `utterance` replaces them).
 */
export function followConsultAi(
  socket: ConsultSocket,
  consult: string,
  handlers: {
    onResult(result: AiResultMessage): void;
    /** The hub accepted the subscription (on every connect), before the history is read. */
    onSubscribed?(): void;
    onEnded?(ended: ConsultEnded): void;
    onError?(error: ProtocolError): void;
  },
): AiFollower {
  const seen = new Set<string>();
  let lastId: string | null = null;
  let stopped = false;

  const deliver = (result: AiResultMessage) => {
    if (stopped || result.payload.consult !== consult) return;
    if (result.type === 'emotion' || result.payload.kind === 'final') {
      const key = `${result.type}/${result.payload.participant}/${result.payload.utterance}`;
      if (seen.has(key)) return;
      seen.add(key);
    }
    handlers.onResult(result);
  };
  const onTranscript = (payload: Extract<AiResultMessage, { type: 'transcript' }>['payload']) => deliver({ type: 'transcript', payload });
  const onEmotion = (payload: Extract<AiResultMessage, { type: 'emotion' }>['payload']) => deliver({ type: 'emotion', payload });
  const onEnded = (ended: ConsultEnded) => {
    if (!stopped && ended.consult === consult) handlers.onEnded?.(ended);
  };

  const catchUp = async () => {
    try {
      const subscribed = await consultRequest(socket, 'consult:subscribe', { consult });
      if (!subscribed.ok) return handlers.onError?.(subscribed.error);
      if (!stopped) handlers.onSubscribed?.();
      for (;;) {
        const page = await consultRequest(socket, 'consult:ai-history', { consult, ...(lastId ? { after: lastId } : {}) });
        if (!page.ok) return handlers.onError?.(page.error);
        for (const { id, ...result } of page.results) {
          lastId = id;
          deliver(result as AiResultMessage);
        }
        if (!page.hasMore || stopped) return;
      }
    } catch {
      // No answer: the next connect tries again.
    }
  };

  socket.on('consult:transcript', onTranscript);
  socket.on('consult:emotion', onEmotion);
  socket.on('consult:ended', onEnded);
  const onConnect = () => void catchUp();
  socket.on('connect', onConnect);
  if (socket.connected) void catchUp();

  return {
    stop() {
      stopped = true;
      socket.off('consult:transcript', onTranscript);
      socket.off('consult:emotion', onEmotion);
      socket.off('consult:ended', onEnded);
      socket.off('connect', onConnect);
      if (socket.connected) void consultRequest(socket, 'consult:unsubscribe', { consult }).catch(() => undefined);
    },
  };
}
