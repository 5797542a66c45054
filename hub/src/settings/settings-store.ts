import type { RedisClient } from '@clinic-hub/platform/redis';
import { defineScripts } from '@clinic-hub/platform/redis-scripts';
import { ClinicConfig, type ClinicSettingsRecord, type Role } from '@clinic-hub/protocol';
import { auditKey } from '../audit/audit-log.js';
import { SETTINGS_CHANNEL, settingsKey } from './settings-keys.js';

type SaveCommand = (settingsKey: string, auditKey: string, ...args: string[]) => Promise<number>;

/** Who changes settings, for the audit entry. */
export interface SettingsActor {
  sub: string;
  role: Role;
  /** The client's address. */
  from: string;
}

export interface SettingsChange {
  /** What changed, e.g. "rooms.r2.open" or "departments,ai". */
  subject: string;
  /** The changed parts as they were and as they are (JSON). */
  before: unknown;
  after: unknown;
}

export type SaveResult = { ok: true; version: number } | { ok: false; currentVersion: number };

/**
 * Clinic settings in Redis: one hash per clinic holding the clinic's
 * configuration (the clinic file's schema) and a version. A save is one
 * script (scripts/save-settings-2.lua) that checks the version, writes,
 * appends the audit entry and publishes the change to every hub node.
 */
export class SettingsStore {
  private readonly save: SaveCommand;

  constructor(private readonly redis: RedisClient) {
    const scripts = defineScripts(redis, new URL('./scripts/', import.meta.url), 'clinicSettings', ['save-settings']);
    this.save = (settings, audit, ...args) => scripts['save-settings']<number>([settings, audit], args);
  }

  /** Writes the clinic file's settings unless the clinic already has some: files are the seed of a new clinic. */
  async seed(config: ClinicConfig): Promise<boolean> {
    const version = await this.save(settingsKey(config.id), auditKey(config.id), JSON.stringify(config), '0', 'seed', SETTINGS_CHANNEL, config.id, '');
    return version > 0;
  }

  /** The clinic's settings as stored, validated with the clinic file's schema; null when there are none or they do not validate. */
  async read(clinic: string): Promise<ClinicSettingsRecord | { invalid: string } | null> {
    const [json, version, updatedAt, updatedBy] = await this.redis.hmget(settingsKey(clinic), 'config', 'version', 'updatedAt', 'updatedBy');
    if (!json || !version) return null;
    let raw: unknown;
    try {
      raw = JSON.parse(json);
    } catch {
      return { invalid: 'not JSON' };
    }
    const parsed = ClinicConfig.safeParse(raw);
    if (!parsed.success) return { invalid: parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ') };
    return { clinic, version: Number(version), updatedAt: Number(updatedAt ?? 0), updatedBy: updatedBy ?? '', settings: parsed.data };
  }

  async version(clinic: string): Promise<number> {
    return Number((await this.redis.hget(settingsKey(clinic), 'version')) ?? 0);
  }

  /** Saves `settings` if the stored version is still `expectedVersion`, with its audit entry. */
  async update(settings: ClinicConfig, expectedVersion: number, actor: SettingsActor, change: SettingsChange, action: string): Promise<SaveResult> {
    const version = await this.save(
      settingsKey(settings.id),
      auditKey(settings.id),
      JSON.stringify(settings),
      String(expectedVersion),
      actor.sub,
      SETTINGS_CHANNEL,
      settings.id,
      'audit',
      actor.role,
      action,
      change.subject,
      actor.from,
      JSON.stringify(change.before),
      JSON.stringify(change.after),
    );
    return version > 0 ? { ok: true, version } : { ok: false, currentVersion: -version };
  }
}

/** The top-level settings that differ, with their values before and after (what the audit keeps). */
export function diffSettings(before: ClinicConfig, after: ClinicConfig): SettingsChange | null {
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])] as (keyof ClinicConfig)[];
  const changed = keys.filter((key) => JSON.stringify(before[key]) !== JSON.stringify(after[key])).sort();
  if (changed.length === 0) return null;
  const pick = (config: ClinicConfig) => Object.fromEntries(changed.map((key) => [key, config[key] ?? null]));
  return { subject: changed.join(','), before: pick(before), after: pick(after) };
}
