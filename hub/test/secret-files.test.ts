import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { loadNotifyConfig } from '../src/notify/notify-config.js';
import { configErrorOf } from './support/config-error.js';

const dir = mkdtempSync(join(tmpdir(), 'clinic-hub-secrets-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A secret file as Docker mounts it under /run/secrets: the value and the newline an editor leaves. */
function secretFile(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content, { mode: 0o600 });
  return path;
}

const TOKEN_SECRET = 'a-secret-that-is-long-enough-for-hs256-0123456789';
const ATTACHMENT_KEY = Buffer.alloc(32, 3).toString('base64');

describe('secrets from files (NAME_FILE)', () => {
  it('reads the hub secret, the attachment key and the Redis URL from files, without the trailing newline', () => {
    const config = loadConfig({
      REDIS_URL_FILE: secretFile('redis-url', 'redis://:pa55@redis:6379\n'),
      HUB_TOKEN_SECRET_FILE: secretFile('token-secret', `${TOKEN_SECRET}\n`),
      HUB_ATTACHMENT_KEY_FILE: secretFile('attachment-key', `${ATTACHMENT_KEY}\r\n`),
    });
    expect(config.tokenSecret).toBe(TOKEN_SECRET);
    expect(config.chat.attachmentKey).toEqual(Buffer.alloc(32, 3));
    expect(config.redis).toEqual({ mode: 'single', url: 'redis://:pa55@redis:6379' });
    expect(config.notify.redis).toEqual({ mode: 'single', url: 'redis://:pa55@redis:6379' });
  });

  it('reads the notification providers’ secrets from files', () => {
    const config = loadNotifyConfig({
      REDIS_URL: 'redis://redis:6379',
      NOTIFY_SMS_ACCOUNT_SID: 'AC0001',
      NOTIFY_SMS_FROM: '+81300000000',
      NOTIFY_SMS_AUTH_TOKEN_FILE: secretFile('sms-token', 'sms-auth-token\n'),
      NOTIFY_LINE_CHANNEL_ACCESS_TOKEN_FILE: secretFile('line-token', 'line-token\n'),
      NOTIFY_SMTP_URL_FILE: secretFile('smtp-url', 'smtps://user:pass@smtp.example.jp:465\n'),
      NOTIFY_SMTP_FROM: 'clinic <noreply@clinic.example.jp>',
    });
    expect(config.channels.sms).toMatchObject({ authToken: 'sms-auth-token' });
    expect(config.channels.line).toMatchObject({ channelAccessToken: 'line-token' });
    expect(config.channels.email).toMatchObject({ url: 'smtps://user:pass@smtp.example.jp:465' });
  });

  it('refuses NAME and NAME_FILE together, naming both and printing neither value', () => {
    const message = configErrorOf(() =>
      loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379', HUB_TOKEN_SECRET: TOKEN_SECRET, HUB_TOKEN_SECRET_FILE: secretFile('both', `${TOKEN_SECRET}\n`) }),
    );
    expect(message).toContain('HUB_TOKEN_SECRET_FILE');
    expect(message).toContain('not both');
    expect(message).not.toContain(TOKEN_SECRET);
  });

  it('names the variable of a file that is missing or empty', () => {
    const missing = configErrorOf(() => loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379', HUB_TOKEN_SECRET_FILE: join(dir, 'no-such-file') }));
    expect(missing).toContain('HUB_TOKEN_SECRET_FILE');
    expect(missing).toContain('ENOENT');
    const empty = configErrorOf(() => loadNotifyConfig({ REDIS_URL_FILE: secretFile('empty', '\n') }));
    expect(empty).toContain('REDIS_URL_FILE');
    expect(empty).toContain('empty');
  });

  it('checks a value read from a file like one from the environment, without printing it', () => {
    const message = configErrorOf(() => loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379', HUB_TOKEN_SECRET_FILE: secretFile('short', 'hunter2-short\n') }));
    expect(message).toContain('HUB_TOKEN_SECRET');
    expect(message).toContain('32');
    expect(message).not.toContain('hunter2');
  });
});
