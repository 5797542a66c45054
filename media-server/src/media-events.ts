import type { ConsultRole } from '@clinic-hub/protocol';
import type { EngineEvents, PublishedTrack } from './engine/engine-types.js';

/**
 * What happens in this node's rooms, for the parts that follow tracks
 * without being the SFU (the audio tap): subscribe with the events wanted.
 * A listener that throws is logged by the caller's logger and does not stop
 * the others or the room.
 */
export class MediaEvents {
  private readonly listeners = new Set<Partial<EngineEvents>>();

  constructor(private readonly onListenerError: (error: unknown, event: keyof EngineEvents) => void) {}

  subscribe(listener: Partial<EngineEvents>): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  trackPublished(track: PublishedTrack): void {
    this.emit('trackPublished', (l) => l.trackPublished?.(track));
  }

  participantJoined(roomId: string, participantId: string, part: ConsultRole): void {
    this.emit('participantJoined', (l) => l.participantJoined?.(roomId, participantId, part));
  }

  participantLeft(roomId: string, participantId: string): void {
    this.emit('participantLeft', (l) => l.participantLeft?.(roomId, participantId));
  }

  roomClosed(roomId: string): void {
    this.emit('roomClosed', (l) => l.roomClosed?.(roomId));
  }

  private emit(event: keyof EngineEvents, call: (listener: Partial<EngineEvents>) => void): void {
    for (const listener of this.listeners) {
      try {
        call(listener);
      } catch (error) {
        this.onListenerError(error, event);
      }
    }
  }
}
