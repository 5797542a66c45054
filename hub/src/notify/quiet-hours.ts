import type { QuietHours } from '@clinic-hub/protocol';

const clockFormatters = new Map<string, Intl.DateTimeFormat>();

function clockFormatter(timezone: string): Intl.DateTimeFormat {
  let format = clockFormatters.get(timezone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-GB', { timeZone: timezone, hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
    clockFormatters.set(timezone, format);
  }
  return format;
}

/** Seconds since local midnight in the timezone. */
function localSecondOfDay(at: number, timezone: string): number {
  const parts = clockFormatter(timezone).formatToParts(new Date(at));
  const part = (type: string) => Number(parts.find((p) => p.type === type)?.value ?? 0);
  return part('hour') * 3600 + part('minute') * 60 + part('second');
}

function secondsOf(clock: string): number {
  const [h, m] = clock.split(':').map(Number);
  return h! * 3600 + m! * 60;
}

/**
 * When the quiet hours around `at` end, in ms since the epoch, or null when
 * `at` is outside them. Windows may wrap midnight (21:00–08:00). Computed from
 * the local clock, so a DST change inside the window shifts the end by the
 * change (Japan has no DST).
 */
export function quietHoursEnd(at: number, timezone: string, quiet: QuietHours | null): number | null {
  if (!quiet) return null;
  const now = localSecondOfDay(at, timezone);
  const start = secondsOf(quiet.start);
  const end = secondsOf(quiet.end);
  const inside = start < end ? now >= start && now < end : now >= start || now < end;
  if (!inside) return null;
  const untilEnd = (end - now + 86400) % 86400;
  const msIntoSecond = at % 1000;
  return at - msIntoSecond + untilEnd * 1000;
}
