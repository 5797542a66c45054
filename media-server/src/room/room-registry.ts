import { Room, type RoomDeps } from './room.js';

/** The rooms this node hosts, by clinic and consultation. */
export class RoomRegistry {
  private readonly rooms = new Map<string, Room>();
  private readonly emptyListeners = new Set<() => void>();

  constructor(private readonly deps: Omit<RoomDeps, 'onClosed'>) {}

  get(clinic: string, consult: string): Room | undefined {
    return this.rooms.get(roomKey(clinic, consult));
  }

  getOrCreate(clinic: string, consult: string): Room {
    const key = roomKey(clinic, consult);
    let room = this.rooms.get(key);
    if (!room) {
      room = new Room(clinic, consult, {
        ...this.deps,
        onClosed: (closed) => {
          if (this.rooms.get(key) === closed) this.rooms.delete(key);
          if (this.rooms.size === 0) for (const listener of this.emptyListeners) listener();
        },
      });
      this.rooms.set(key, room);
    }
    return room;
  }

  counts(): { rooms: number; participants: number } {
    let participants = 0;
    for (const room of this.rooms.values()) participants += room.participants.size;
    return { rooms: this.rooms.size, participants };
  }

  /** Resolves when no room is left (at once if there is none). */
  whenEmpty(): Promise<void> {
    if (this.rooms.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const listener = () => {
        this.emptyListeners.delete(listener);
        resolve();
      };
      this.emptyListeners.add(listener);
    });
  }

  closeAll(reason: 'ended' | 'draining'): void {
    for (const room of [...this.rooms.values()]) room.close(reason);
  }
}

const roomKey = (clinic: string, consult: string) => `${clinic}/${consult}`;
