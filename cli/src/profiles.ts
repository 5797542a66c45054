import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

export interface Profile {
  url: string;
  token: string;
  /** The clinic an all-clinics ("*") token acts for. */
  clinic?: string;
  savedAt: number;
}

export interface ProfileStore {
  current: string | null;
  profiles: Record<string, Profile>;
}

export const DEFAULT_PROFILE = 'default';

/** $XDG_CONFIG_HOME/clinic-hub/config.json, else ~/.config/clinic-hub/config.json. */
export function configFile(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME.startsWith('/') ? env.XDG_CONFIG_HOME : join(homedir(), '.config');
  return join(base, 'clinic-hub', 'config.json');
}

export function readProfiles(file: string): ProfileStore {
  if (!existsSync(file)) return { current: null, profiles: {} };
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<ProfileStore>;
  return { current: parsed.current ?? null, profiles: parsed.profiles ?? {} };
}

/** Written whole to a temporary file and renamed, readable by the user only: it holds tokens. */
export function writeProfiles(file: string, store: ProfileStore): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(store, null, 2)}\n`, { mode: 0o600 });
  chmodSync(temporary, 0o600);
  renameSync(temporary, file);
}
