import type { MediaSource } from '@clinic-hub/protocol';
import type { TransportOwner } from './engine-types.js';

/**
 * The end of a published track, for either engine: listeners are told once
 * when it ends, and one added after the end is told at once (in a
 * microtask), so a recording or audio tap that subscribes late still learns
 * of it.
 */
export class TrackEnd {
  private readonly listeners = new Set<() => void>();
  private done = false;

  get ended(): boolean {
    return this.done;
  }

  /** Calls `listener` when the track ends; the returned function takes it back. */
  listen(listener: () => void): () => void {
    if (this.done) {
      queueMicrotask(listener);
      return () => undefined;
    }
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Marks it ended (from now on `ended` is true, so a call back into the track during its clean-up sees it); false when it had ended already. */
  end(): boolean {
    if (this.done) return false;
    this.done = true;
    return true;
  }

  /** After `end()` and the track's clean-up: tells every listener once; one that throws goes to `onError` and the rest are still told. */
  notify(onError: (error: unknown) => void): void {
    for (const listener of [...this.listeners]) {
      try {
        listener();
      } catch (error) {
        onError(error);
      }
    }
    this.listeners.clear();
  }
}

/** What both engines' published tracks share: whose track it is (from its transport's owner), its source, and its end. */
export abstract class PublishedTrackBase {
  readonly clinic: string;
  readonly roomId: string;
  readonly participantId: string;
  readonly part: TransportOwner['part'];
  protected readonly trackEnd = new TrackEnd();

  constructor(
    owner: TransportOwner,
    readonly source: MediaSource,
  ) {
    this.clinic = owner.clinic;
    this.roomId = owner.roomId;
    this.participantId = owner.participantId;
    this.part = owner.part;
  }

  get ended(): boolean {
    return this.trackEnd.ended;
  }

  onEnded(listener: () => void): () => void {
    return this.trackEnd.listen(listener);
  }
}
