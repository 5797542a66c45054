import type { RedisClient } from '@clinic-hub/platform/redis';
import { fail, type Ack, type ClinicConfig, type ClinicSettingsRecord, type PublicTicket, type RoomStateResult } from '@clinic-hub/protocol';
import type { Logger } from '@clinic-hub/platform/logging';
import type { ClinicRegistry } from '../clinics/clinic-registry.js';
import { SETTINGS_CHANNEL } from './settings-keys.js';
import { SettingsStore, diffSettings, type SettingsActor } from './settings-store.js';

/** How often a node compares its versions with Redis: the safety net under the pub/sub message. */
const POLL_MS = 5000;
/** A room toggled by several people at once: how often one toggle re-reads and retries. */
const ROOM_RETRIES = 5;

export interface ClinicSettingsDeps {
  redis: RedisClient;
  /** A connection of its own (it subscribes). */
  subscriber: RedisClient;
  clinics: ClinicRegistry;
  logger: Logger;
  /** The clinic's live tickets (waiting, called, in consultation): a department or room they are in is not removed. */
  liveTickets: (clinic: string) => Promise<PublicTicket[]>;
  /** A clinic's settings changed on this node (from this node or another): tell its clients. */
  onApplied: (clinic: ClinicConfig) => void;
}

/**
 * A clinic's settings live in Redis; the clinic files seed them. Every hub
 * node holds the current settings in its ClinicRegistry and applies a change
 * as soon as the save script publishes it (a second at most through the
 * periodic check if that message was lost), without a restart.
 */
export class ClinicSettings {
  private readonly store: SettingsStore;
  private readonly versions = new Map<string, number>();
  private readonly meta = new Map<string, { updatedAt: number; updatedBy: string }>();
  private pollTimer: NodeJS.Timeout | null = null;

  constructor(private readonly deps: ClinicSettingsDeps) {
    this.store = new SettingsStore(deps.redis);
  }

  async start(): Promise<void> {
    const { subscriber, clinics, logger } = this.deps;
    for (const clinic of clinics.all()) {
      if (await this.store.seed(clinic)) logger.info({ clinic: clinic.id }, 'clinic settings seeded from its file');
      await this.reload(clinic.id);
    }
    subscriber.on('message', (channel: string, raw: string) => {
      if (channel !== SETTINGS_CHANNEL) return;
      let message: { clinic?: unknown; version?: unknown };
      try {
        message = JSON.parse(raw) as typeof message;
      } catch {
        return;
      }
      if (typeof message.clinic !== 'string' || typeof message.version !== 'number') return;
      if (message.version > (this.versions.get(message.clinic) ?? 0)) this.reloadLogged(message.clinic);
    });
    await subscriber.subscribe(SETTINGS_CHANNEL);
    // Back after a lost connection (ioredis resubscribes): what was published meanwhile is in Redis.
    subscriber.on('ready', () => this.reloadAll());
    this.pollTimer = setInterval(() => this.reloadAll(), POLL_MS).unref();
  }

  stop(): void {
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = null;
  }

  /** The clinic's settings as this node applies them. */
  current(clinic: string): ClinicSettingsRecord | null {
    const settings = this.deps.clinics.get(clinic);
    const version = this.versions.get(clinic);
    if (!settings || version === undefined) return null;
    const meta = this.meta.get(clinic) ?? { updatedAt: 0, updatedBy: '' };
    return { clinic, version, ...meta, settings };
  }

  /** Replaces the clinic's settings (already validated); refused when `ifVersion` is given and no longer current. */
  async update(clinic: string, settings: ClinicConfig, actor: SettingsActor, ifVersion?: number): Promise<Ack<{ record: ClinicSettingsRecord; changed: boolean }>> {
    const stored = await this.store.read(clinic);
    if (!stored || 'invalid' in stored) return fail('CLINIC_NOT_FOUND', clinic);
    if (ifVersion !== undefined && ifVersion !== stored.version) {
      return fail('SETTINGS_VERSION_CONFLICT', `you read version ${ifVersion}; it is ${stored.version} now`);
    }
    const change = diffSettings(stored.settings, settings);
    if (!change) return { ok: true, record: stored, changed: false };
    const blocked = removalBlockedByTickets(stored.settings, settings, await this.deps.liveTickets(clinic));
    if (blocked) return blocked;
    const saved = await this.store.update(settings, stored.version, actor, change, 'settings.update');
    if (!saved.ok) return fail('SETTINGS_VERSION_CONFLICT', `changed meanwhile; it is version ${saved.currentVersion} now`);
    await this.reload(clinic);
    return { ok: true, record: { clinic, version: saved.version, updatedAt: Date.now(), updatedBy: actor.sub, settings }, changed: true };
  }

  /** Opens or closes one room: a change of settings like any other (audited), retried when someone saved meanwhile. */
  async setRoomOpen(clinic: string, roomId: string, open: boolean, actor: SettingsActor): Promise<Ack<{ result: RoomStateResult }>> {
    for (let attempt = 0; attempt < ROOM_RETRIES; attempt++) {
      const stored = await this.store.read(clinic);
      if (!stored || 'invalid' in stored) return fail('CLINIC_NOT_FOUND', clinic);
      const dept = stored.settings.departments.find((d) => d.rooms.some((r) => r.id === roomId));
      const room = dept?.rooms.find((r) => r.id === roomId);
      if (!dept || !room) return fail('QUEUE_ROOM_NOT_FOUND', roomId);
      if (room.open === open) return { ok: true, result: { room: roomId, dept: dept.id, open, version: stored.version } };
      const settings: ClinicConfig = {
        ...stored.settings,
        departments: stored.settings.departments.map((d) => ({ ...d, rooms: d.rooms.map((r) => (r.id === roomId ? { ...r, open } : r)) })),
      };
      const change = { subject: `rooms.${roomId}.open`, before: { open: room.open }, after: { open } };
      const saved = await this.store.update(settings, stored.version, actor, change, open ? 'room.open' : 'room.close');
      if (saved.ok) {
        await this.reload(clinic);
        return { ok: true, result: { room: roomId, dept: dept.id, open, version: saved.version } };
      }
    }
    return fail('SETTINGS_VERSION_CONFLICT', 'the settings kept changing; try again');
  }

  private reloadAll(): void {
    for (const clinic of this.deps.clinics.ids()) {
      void this.store.version(clinic).then(
        (version) => {
          if (version > (this.versions.get(clinic) ?? 0)) this.reloadLogged(clinic);
        },
        () => undefined, // Redis away: the next round or the 'ready' reload catches up
      );
    }
  }

  private reloadLogged(clinic: string): void {
    void this.reload(clinic).catch((error: Error) => this.deps.logger.warn({ clinic, err: error.message }, 'cannot reload clinic settings'));
  }

  /** Reads the clinic's settings from Redis and applies them if newer than what this node has. */
  private async reload(clinic: string): Promise<void> {
    const stored = await this.store.read(clinic);
    if (!stored) return;
    if ('invalid' in stored) {
      this.deps.logger.error({ clinic, problem: stored.invalid }, "clinic settings in Redis do not validate; keeping this node's current settings");
      return;
    }
    if (stored.version <= (this.versions.get(clinic) ?? 0)) return;
    const first = !this.versions.has(clinic);
    this.versions.set(clinic, stored.version);
    this.meta.set(clinic, { updatedAt: stored.updatedAt, updatedBy: stored.updatedBy });
    this.deps.clinics.replace(stored.settings);
    if (!first) {
      this.deps.logger.info({ clinic, version: stored.version }, 'clinic settings applied');
      this.deps.onApplied(stored.settings);
    }
  }
}

/** At most this many ticket numbers are named in a refusal's detail. */
const NAMED_TICKETS = 5;

/**
 * A change that removes a department with live tickets, or a room a live
 * ticket is called to or seen in, is refused: those patients would be left
 * in a queue no screen shows and no one can call. (A ticket issued by a node
 * between this check and the save is the window that remains: a node applies
 * a change within a second.)
 */
export function removalBlockedByTickets(before: ClinicConfig, after: ClinicConfig, tickets: readonly PublicTicket[]): ReturnType<typeof fail> | null {
  const numbers = (list: PublicTicket[]) => list.slice(0, NAMED_TICKETS).map((t) => t.number).join(', ') + (list.length > NAMED_TICKETS ? ', …' : '');
  for (const dept of before.departments) {
    const kept = after.departments.find((d) => d.id === dept.id);
    if (!kept) {
      const inDept = tickets.filter((t) => t.dept === dept.id);
      if (inDept.length > 0) return fail('SETTINGS_DEPT_HAS_TICKETS', `department ${dept.id} has ${inDept.length} live ticket${inDept.length === 1 ? '' : 's'} (${numbers(inDept)}): finish, cancel or mark them no-show, then save again`);
      continue;
    }
    for (const room of dept.rooms) {
      if (kept.rooms.some((r) => r.id === room.id)) continue;
      const inRoom = tickets.filter((t) => t.dept === dept.id && t.room === room.id);
      if (inRoom.length > 0) return fail('SETTINGS_ROOM_HAS_TICKETS', `room ${room.id} of ${dept.id} has ${inRoom.length} live ticket${inRoom.length === 1 ? '' : 's'} (${numbers(inRoom)}): finish or skip them (or close the room instead), then save again`);
    }
  }
  return null;
}
