import { z } from 'zod';
import type { PublicClinic } from './clinic.js';
import type { CheckinResult } from './events.js';
import { PhoneE164 } from './notify.js';

/**
 * Patients checking themselves in: at the kiosk by the entrance (a `kiosk`
 * token), on their own phone from the clinic's QR poster, or arriving for an
 * appointment with the code or link of its reminder. Every path issues the
 * same ticket, with the same `ticket.issued` event, as a check-in at
 * reception (docs/protocol.md, "Self check-in").
 */

/** Languages the kiosk and the phone check-in page can speak (ja and en always; the clinic adds others). */
export const CHECKIN_LANGUAGES = ['ja', 'en', 'zh', 'ko'] as const;
export const CheckinLanguage = z.enum(CHECKIN_LANGUAGES);
export type CheckinLanguage = z.infer<typeof CheckinLanguage>;

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

const minutesOf = (clock: string) => Number(clock.slice(0, 2)) * 60 + Number(clock.slice(3, 5));

/** "08:30-12:00" in the clinic's timezone; the end may be "24:00". */
export const OpeningRange = z
  .string()
  .regex(/^([01]\d|2[0-3]):[0-5]\d-(([01]\d|2[0-3]):[0-5]\d|24:00)$/, 'HH:MM-HH:MM, e.g. 08:30-12:00')
  .refine((range) => minutesOf(range.slice(0, 5)) < minutesOf(range.slice(6)), 'the range must end after it starts');

/**
 * When the clinic is open, in its own timezone: each weekday's ranges (none:
 * closed that day) and dates it is closed (holidays). Check-ins from phones
 * are taken only then.
 */
export const OpeningHours = z.object({
  ...(Object.fromEntries(WEEKDAYS.map((day) => [day, z.array(OpeningRange).max(6).default([])])) as Record<Weekday, z.ZodDefault<z.ZodArray<typeof OpeningRange>>>),
  /** Dates the clinic is closed whatever the weekday, YYYY-MM-DD. */
  closedDates: z.array(z.iso.date()).max(400).default([]),
});
export type OpeningHours = z.infer<typeof OpeningHours>;

const DeptRef = z.string().regex(/^[A-Za-z0-9_-]{1,32}$/);

/** The clinic file's `selfCheckin`: what patients may do without reception. */
export const SelfCheckinConfig = z.object({
  /** Departments patients may pick at the kiosk or on the phone; absent: every department that is not online. */
  departments: z.array(DeptRef).min(1).optional(),
  /** Check-in on the patient's own phone from the clinic's QR poster (within `openingHours`). */
  mobile: z.boolean().default(false),
  /** Languages the kiosk and phone pages offer, besides Japanese and English. */
  languages: z
    .array(CheckinLanguage)
    .refine((languages) => new Set(languages).size === languages.length, 'each language at most once')
    .default(['ja', 'en']),
  /** An appointment patient arriving more than this many minutes after their time waits as a walk-in. */
  appointmentLateMinutes: z.number().min(0).max(24 * 60).default(15),
  /** How many minutes before their time an appointment patient may arrive (earlier: APPOINTMENT_TOO_EARLY). */
  arrivalOpensMinutesBefore: z.number().min(0).max(24 * 60).default(120),
});
export type SelfCheckinConfig = z.infer<typeof SelfCheckinConfig>;
export const DEFAULT_SELF_CHECKIN: SelfCheckinConfig = SelfCheckinConfig.parse({});

/** The code of an appointment's arrival: ten digits, typed at the kiosk (spaces and hyphens are for reading only). */
export const ArrivalCode = z.string().regex(/^\d{10}$/, 'ten digits');
/** A clinic poster's id (the QR code's link carries it). */
export const PosterId = z.string().regex(/^[A-Za-z0-9_-]{16,32}$/, 'a poster id');

const RequestId = z.string().regex(/^[A-Za-z0-9_-]{8,64}$/, '8–64 of A-Z a-z 0-9 _ -');

const selfCheckinFields = {
  /** A walk-in's department (one of the clinic's self check-in departments). */
  dept: DeptRef.optional(),
  /** An appointment's arrival: its department and time come from the appointment. */
  appointmentCode: ArrivalCode.optional(),
  /** Notices by SMS to this number; without it they go to the patient's own page (and Web Push, LINE once linked). */
  phone: PhoneE164.optional(),
  /** The language the patient chose; notices use Japanese or English (others: English). */
  language: CheckinLanguage.default('ja'),
  requestId: RequestId.optional(),
};

const oneOfDeptOrCode = (payload: { dept?: string | undefined; appointmentCode?: string | undefined }) =>
  (payload.dept === undefined) !== (payload.appointmentCode === undefined);
const ONE_OF = { message: 'give a dept or an appointmentCode, not both', path: ['dept'] };

/** `queue:self-checkin` (kiosk, staff, admin). */
export const SelfCheckinPayload = z.object(selfCheckinFields).refine(oneOfDeptOrCode, ONE_OF);
export type SelfCheckinPayload = z.input<typeof SelfCheckinPayload>;

/**
 * `POST /api/clinics/:clinic/self-checkin`: the same, from a phone. Without a
 * kiosk token it needs the poster's id (a walk-in) or an appointment code
 * (an arrival from the reminder's link).
 */
export const SelfCheckinBody = z.object({ ...selfCheckinFields, poster: PosterId.optional() }).refine(oneOfDeptOrCode, ONE_OF);
export type SelfCheckinBody = z.input<typeof SelfCheckinBody>;

/** How a patient links LINE to their ticket: open `url` (or scan its QR code) and send the prefilled `code` to the clinic's account. */
export interface LineLink {
  url: string;
  code: string;
  /** The code is good until then (ms since the epoch), once. */
  expiresAt: number;
}

export interface SelfCheckinResult extends CheckinResult {
  /** The appointment this was the arrival of; null for a walk-in. `late`: past `appointmentLateMinutes`, so it waits as a walk-in. */
  appointment: { startsAt: number; late: boolean } | null;
  /** LINE linking for this ticket; null when the hub has no LINE account configured. */
  line: LineLink | null;
  /** The department's wait for this ticket when it was issued (`estimateWaitMinutes`) and how many wait before it. */
  ahead: number;
  waitMinutes: number;
}

/** `GET /api/clinics/:clinic/self-checkin`: what the kiosk and phone pages show before a check-in. */
export interface SelfCheckinInfo {
  clinic: PublicClinic;
  /** Department ids patients may pick, in the clinic's order. */
  departments: string[];
  languages: CheckinLanguage[];
  /** Check-in from phones (the poster): on at all, and open now. */
  mobile: { enabled: boolean; open: boolean; openingHours: OpeningHours | null };
  /** Whether LINE linking is offered. */
  line: boolean;
}
