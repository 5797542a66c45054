import { describe, expect, it } from 'vitest';
import { NOTIFY_KINDS, NotifyContact } from '@clinic-hub/protocol';
import { ClinicRegistry } from '../src/clinics/clinic-registry.js';
import { ConfigError } from '../src/config.js';
import { TEST_CLINICS_DIR } from '@clinic-hub/test-kit/hub-node';
import { loadNotifyConfig } from '../src/notify/notify-config.js';
import { providerKeyOf } from '../src/notify/notification-worker.js';
import { quietHoursEnd } from '../src/notify/quiet-hours.js';
import { renderNotice } from '../src/notify/templates.js';

const tokyo = (iso: string) => Date.parse(`${iso}+09:00`);
const clinic = ClinicRegistry.fromDirectory(TEST_CLINICS_DIR).get('testclinic')!;

describe('quiet hours', () => {
  const night = { start: '21:00', end: '08:00' };

  it('ends at the next end time when inside a window that wraps midnight', () => {
    expect(quietHoursEnd(tokyo('2026-03-10T23:00:00'), 'Asia/Tokyo', night)).toBe(tokyo('2026-03-11T08:00:00'));
    expect(quietHoursEnd(tokyo('2026-03-11T07:59:30'), 'Asia/Tokyo', night)).toBe(tokyo('2026-03-11T08:00:00'));
    expect(quietHoursEnd(tokyo('2026-03-10T21:00:00'), 'Asia/Tokyo', night)).toBe(tokyo('2026-03-11T08:00:00'));
  });

  it('is null outside the window, at its end, and when switched off', () => {
    expect(quietHoursEnd(tokyo('2026-03-10T12:00:00'), 'Asia/Tokyo', night)).toBeNull();
    expect(quietHoursEnd(tokyo('2026-03-11T08:00:00'), 'Asia/Tokyo', night)).toBeNull();
    expect(quietHoursEnd(tokyo('2026-03-10T20:59:59'), 'Asia/Tokyo', night)).toBeNull();
    expect(quietHoursEnd(tokyo('2026-03-10T23:00:00'), 'Asia/Tokyo', null)).toBeNull();
  });

  it('uses the clinic timezone, not the machine one', () => {
    // 23:00 in Tokyo is 14:00 UTC: quiet in Tokyo, not in London.
    const at = tokyo('2026-03-10T23:00:00');
    expect(quietHoursEnd(at, 'Asia/Tokyo', night)).not.toBeNull();
    expect(quietHoursEnd(at, 'Europe/London', night)).toBeNull();
  });

  it('handles a window within one day', () => {
    expect(quietHoursEnd(tokyo('2026-03-10T12:30:00'), 'Asia/Tokyo', { start: '12:00', end: '13:00' })).toBe(tokyo('2026-03-10T13:00:00'));
  });
});

describe('templates', () => {
  it('calls a ticket to its room in Japanese and English, with no gaps', () => {
    const ja = renderNotice('queue_called', 'ja', { ticketNumber: 'A-012', room: 'r1', dept: 'gp' }, clinic);
    expect(ja.title).toBe('【テストクリニック】受付番号 A-012 の方、第1診察室へお入りください');
    expect(ja.short).toContain('第1診察室');
    const en = renderNotice('queue_called', 'en', { ticketNumber: 'A-012', room: 'r1' }, clinic);
    expect(en.body).toBe('Ticket A-012: thank you for waiting, please go to Room 1.');
  });

  it('says how many are ahead', () => {
    expect(renderNotice('queue_3_ahead', 'ja', { ticketNumber: 'B-003', ahead: 3 }, clinic).body).toContain('あと3人でお呼びします');
    expect(renderNotice('queue_1_ahead', 'ja', { ticketNumber: 'B-003', ahead: 0 }, clinic).body).toContain('次にお呼びします');
    expect(renderNotice('queue_1_ahead', 'en', { ticketNumber: 'B-003', ahead: 1 }, clinic).body).toContain('1 person ahead of you');
  });

  it('gives reminders the date and time in the clinic timezone', () => {
    const startsAt = tokyo('2026-03-11T10:30:00');
    const ja = renderNotice('reminder_24h', 'ja', { startsAt, dept: 'gp' }, clinic);
    expect(ja.body).toContain('3月11日(水) 10:30 にテストクリニック（内科）のご予約があります');
    const en = renderNotice('reminder_1h', 'en', { startsAt }, clinic);
    expect(en.body).toContain('today at 10:30');
  });

  it('never renders "undefined" or "null" for any kind and locale', () => {
    for (const kind of NOTIFY_KINDS) {
      for (const locale of ['ja', 'en'] as const) {
        const text = JSON.stringify(renderNotice(kind, locale, {}, clinic));
        expect(text).not.toMatch(/undefined|null|NaN/);
      }
    }
  });
});

describe('contacts', () => {
  it('checks the address against its channel', () => {
    expect(NotifyContact.safeParse({ channel: 'sms', address: '+819012345678' }).success).toBe(true);
    expect(NotifyContact.safeParse({ channel: 'sms', address: '090-1234-5678' }).success).toBe(false);
    expect(NotifyContact.safeParse({ channel: 'line', address: `U${'a'.repeat(32)}` }).success).toBe(true);
    expect(NotifyContact.safeParse({ channel: 'email', address: 'not-an-address' }).success).toBe(false);
    expect(NotifyContact.parse({ channel: 'in_app', address: 'patient:abc' }).locale).toBe('ja');
  });
});

describe('configuration', () => {
  const base = { REDIS_URL: 'redis://127.0.0.1:6379' };

  it('turns off channels that are not configured and says which variables would turn them on', () => {
    const config = loadNotifyConfig(base);
    expect(config.channels.email).toBeNull();
    expect(config.channels.in_app).not.toBeNull();
    expect(config.disabled.map((d) => d.channel).sort()).toEqual(['email', 'line', 'sms']);
    expect(config.disabled.find((d) => d.channel === 'line')?.missing).toEqual(['NOTIFY_LINE_CHANNEL_ACCESS_TOKEN']);
    expect(config.quietHours).toEqual({ start: '21:00', end: '08:00' });
  });

  it('refuses a half-configured channel, naming the missing variable without echoing secrets', () => {
    let error: unknown;
    try {
      loadNotifyConfig({ ...base, NOTIFY_SMS_ACCOUNT_SID: 'AC1', NOTIFY_SMS_FROM: '+81300000000' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain('NOTIFY_SMS_AUTH_TOKEN');
    expect(() => loadNotifyConfig({ ...base, NOTIFY_QUIET_HOURS: '9pm' })).toThrow(/NOTIFY_QUIET_HOURS/);
    expect(() => loadNotifyConfig({ ...base, NOTIFY_SMTP_URL: 'http://secret@host', NOTIFY_SMTP_FROM: 'a@b.c' })).toThrow(/NOTIFY_SMTP_URL/);
    try {
      loadNotifyConfig({ ...base, NOTIFY_SMTP_URL: 'http://user:hunter2@host', NOTIFY_SMTP_FROM: 'a@b.c' });
    } catch (e) {
      expect((e as Error).message).not.toContain('hunter2');
    }
  });
});

describe('provider idempotency keys', () => {
  it('are UUIDs, the same for the same notification and different for others', () => {
    const key = providerKeyOf('testclinic.ticket.abc.queue_called.0');
    expect(key).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(providerKeyOf('testclinic.ticket.abc.queue_called.0')).toBe(key);
    expect(providerKeyOf('testclinic.ticket.abc.queue_called.1')).not.toBe(key);
  });
});
