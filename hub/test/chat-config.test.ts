import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CHAT_DEFAULT_ATTACHMENT_MAX_BYTES } from '@clinic-hub/protocol';
import { loadConfig } from '../src/config.js';
import { configError } from './support/config-error.js';
import { REPO_ROOT } from '@clinic-hub/test-kit/hub-node';

const GOOD = {
  REDIS_URL: 'redis://127.0.0.1:6379',
  HUB_TOKEN_SECRET: 'a-secret-that-is-long-enough-for-hs256-0123456789',
};

describe('chat configuration', () => {
  it('takes a 32-byte base64 attachment key (standard or URL-safe), and none turns attachments off', () => {
    const key = randomBytes(32);
    expect(loadConfig({ ...GOOD, HUB_ATTACHMENT_KEY: key.toString('base64') }).chat.attachmentKey).toEqual(key);
    expect(loadConfig({ ...GOOD, HUB_ATTACHMENT_KEY: key.toString('base64url') }).chat.attachmentKey).toEqual(key);
    expect(loadConfig({ ...GOOD }).chat).toEqual({
      attachmentKey: null,
      attachmentMaxBytes: CHAT_DEFAULT_ATTACHMENT_MAX_BYTES,
      messagesPerSecond: 5,
      attachmentsDir: 'var/attachments',
      quotas: {
        messagesPerMinute: { user: 120, thread: 600, clinic: 12_000 },
        attachmentBytesPerDay: { user: 50 * 1024 * 1024, thread: 200 * 1024 * 1024, clinic: 10_240 * 1024 * 1024 },
      },
    });
    expect(loadConfig({ ...GOOD, HUB_CHAT_QUOTA_ATTACHMENT_MB_PER_DAY_USER: '0.5', HUB_CHAT_QUOTA_MESSAGES_PER_MINUTE_CLINIC: '0' }).chat.quotas).toMatchObject({
      messagesPerMinute: { clinic: 0 },
      attachmentBytesPerDay: { user: 512 * 1024 },
    });
    expect(configError({ ...GOOD, HUB_CHAT_QUOTA_MESSAGES_PER_MINUTE_USER: '-1' })).toContain('HUB_CHAT_QUOTA_MESSAGES_PER_MINUTE_USER');
    expect(loadConfig({ ...GOOD, HUB_ATTACHMENT_KEY: '' }).chat.attachmentKey).toBeNull();
  });

  it('refuses a key that is not 32 bytes of base64, naming the variable and never printing the value', () => {
    for (const bad of [randomBytes(16).toString('base64'), randomBytes(48).toString('base64'), 'correct horse battery staple, not base64!!!', `${randomBytes(32).toString('hex')}`]) {
      const message = configError({ ...GOOD, HUB_ATTACHMENT_KEY: bad });
      expect(message).toContain('HUB_ATTACHMENT_KEY');
      expect(message).toContain('32 bytes');
      expect(message).not.toContain(bad);
    }
  });

  it('checks the attachment size limit and the message rate', () => {
    expect(loadConfig({ ...GOOD, HUB_ATTACHMENT_MAX_BYTES: '2097152', HUB_CHAT_MESSAGES_PER_SECOND: '0' }).chat).toMatchObject({ attachmentMaxBytes: 2097152, messagesPerSecond: 0 });
    expect(configError({ ...GOOD, HUB_ATTACHMENT_MAX_BYTES: 'lots' })).toContain('HUB_ATTACHMENT_MAX_BYTES');
    expect(configError({ ...GOOD, HUB_CHAT_MESSAGES_PER_SECOND: '-1' })).toContain('HUB_CHAT_MESSAGES_PER_SECOND');
  });

  it('stops the hub at start-up with a bad key, saying which variable', () => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', resolve(REPO_ROOT, 'hub/src/main.ts')], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '', ...GOOD, HUB_ATTACHMENT_KEY: 'too-short' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(result.status).not.toBe(0);
    expect(result.status).not.toBeNull();
    expect(result.stderr).toContain('HUB_ATTACHMENT_KEY');
    expect(result.stderr).not.toContain('too-short');
  });
});
