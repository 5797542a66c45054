import { WEEKDAYS, type OpeningHours, type Weekday } from '@clinic-hub/protocol';

interface LocalTime {
  date: string;
  weekday: Weekday;
  minutes: number;
}

const formats = new Map<string, Intl.DateTimeFormat>();
function localTime(timezone: string, at: number): LocalTime {
  let format = formats.get(timezone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone: timezone,
      weekday: 'short',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    formats.set(timezone, format);
  }
  const parts = Object.fromEntries(format.formatToParts(at).map((p) => [p.type, p.value]));
  return {
    date: `${parts.year}-${parts.month}-${parts.day}`,
    weekday: parts.weekday!.toLowerCase().slice(0, 3) as Weekday,
    minutes: Number(parts.hour) * 60 + Number(parts.minute),
  };
}

const rangeMinutes = (range: string): [number, number] => {
  const minutes = (clock: string) => Number(clock.slice(0, 2)) * 60 + Number(clock.slice(3, 5));
  return [minutes(range.slice(0, 5)), minutes(range.slice(6))];
};

/** Whether the clinic is open at `at` (ms), by its opening hours in its timezone. */
export function isOpen(hours: OpeningHours, timezone: string, at: number): boolean {
  const local = localTime(timezone, at);
  if (hours.closedDates.includes(local.date)) return false;
  return hours[local.weekday].some((range) => {
    const [start, end] = rangeMinutes(range);
    return local.minutes >= start && local.minutes < end;
  });
}

/**
 * When the clinic next opens after `at`, as its local date and time
 * ("2026-12-07 08:30"), within the next two weeks; null when it never does.
 * Walks forward a minute of local time at a time from each day's ranges, so
 * daylight-saving timezones need no special case.
 */
export function nextOpening(hours: OpeningHours, timezone: string, at: number): string | null {
  const today = localTime(timezone, at);
  for (let day = 0; day < 15; day++) {
    const local = localTime(timezone, at + day * 86_400_000);
    if (hours.closedDates.includes(local.date)) continue;
    const starts = hours[local.weekday].map((range) => rangeMinutes(range)[0]).sort((a, b) => a - b);
    const start = starts.find((minutes) => day > 0 || minutes > today.minutes);
    if (start !== undefined) return `${local.date} ${String(Math.floor(start / 60)).padStart(2, '0')}:${String(start % 60).padStart(2, '0')}`;
  }
  return null;
}

export { WEEKDAYS };
