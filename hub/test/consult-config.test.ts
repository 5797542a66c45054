/** The hub's consultation settings: from the environment (or a secret file), checked at start-up with the variable named. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HUB_ENVIRONMENT_VARIABLES, loadConfig } from '../src/config.js';
import { configError } from './support/config-error.js';

const GOOD = { REDIS_URL: 'redis://127.0.0.1:6379', HUB_TOKEN_SECRET: 'a-secret-that-is-long-enough-for-hs256-0123456789' };
const MEDIA_SECRET = 'a-media-secret-that-is-long-enough-0123456789';

describe('consultation configuration', () => {
  it('is off without MEDIA_TOKEN_SECRET, with short-lived room tokens by default', () => {
    expect(loadConfig(GOOD).consult).toEqual({ mediaTokenSecret: null, roomTokenTtlSeconds: 300, inviteTtlSeconds: 1800 });
    expect(loadConfig({ ...GOOD, MEDIA_TOKEN_SECRET: '  ' }).consult.mediaTokenSecret).toBeNull();
  });

  it('reads the secret and the lifetimes', () => {
    const config = loadConfig({ ...GOOD, MEDIA_TOKEN_SECRET: MEDIA_SECRET, CONSULT_ROOM_TOKEN_TTL_SECONDS: '120', CONSULT_INVITE_TTL_SECONDS: '600' });
    expect(config.consult).toEqual({ mediaTokenSecret: MEDIA_SECRET, roomTokenTtlSeconds: 120, inviteTtlSeconds: 600 });
  });

  it('reads the secret from MEDIA_TOKEN_SECRET_FILE (Docker secrets), not both', () => {
    const dir = mkdtempSync(join(tmpdir(), 'consult-config-'));
    try {
      const file = join(dir, 'media_token_secret');
      writeFileSync(file, `${MEDIA_SECRET}\n`);
      expect(loadConfig({ ...GOOD, MEDIA_TOKEN_SECRET_FILE: file }).consult.mediaTokenSecret).toBe(MEDIA_SECRET);
      expect(configError({ ...GOOD, MEDIA_TOKEN_SECRET_FILE: file, MEDIA_TOKEN_SECRET: MEDIA_SECRET })).toContain('MEDIA_TOKEN_SECRET_FILE');
      expect(HUB_ENVIRONMENT_VARIABLES).toEqual(expect.arrayContaining(['MEDIA_TOKEN_SECRET', 'MEDIA_TOKEN_SECRET_FILE', 'CONSULT_ROOM_TOKEN_TTL_SECONDS', 'CONSULT_INVITE_TTL_SECONDS']));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names the bad variable, and never echoes a secret', () => {
    const short = configError({ ...GOOD, MEDIA_TOKEN_SECRET: 'too-short-secret' });
    expect(short).toContain('MEDIA_TOKEN_SECRET');
    expect(short).not.toContain('too-short-secret');
    expect(configError({ ...GOOD, CONSULT_ROOM_TOKEN_TTL_SECONDS: '5' })).toContain('CONSULT_ROOM_TOKEN_TTL_SECONDS');
    expect(configError({ ...GOOD, CONSULT_INVITE_TTL_SECONDS: 'soon' })).toContain('CONSULT_INVITE_TTL_SECONDS');
  });
});
