import { z } from 'zod';
import { ConsultLanguage } from './consult.js';
import { ClinicRetentionConfig, DEFAULT_RETENTION } from './retention.js';
import { DEFAULT_SELF_CHECKIN, OpeningHours, SelfCheckinConfig } from './self-checkin.js';

/** Japanese and English: every text a person reads. */
export const LocalizedText = z.object({ ja: z.string().min(1), en: z.string().min(1) });
export type LocalizedText = z.infer<typeof LocalizedText>;

const Id = z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, 'letters, digits, _ or -, at most 32');

export const RoomConfig = z.object({
  id: Id,
  name: LocalizedText,
  /**
   * Whether the room is seeing patients today: set by staff or the clinic's manager (the settings API), never
   * inferred. Only open rooms count as capacity in wait estimates (wait.ts); a closed room can still be called to.
   */
  open: z.boolean().default(true),
});
export const DepartmentConfig = z.object({
  id: Id,
  name: LocalizedText,
  /** Ticket prefix shown on screens: "A" gives A-001. */
  prefix: z.string().regex(/^[A-Z]{1,2}$/, 'one or two capital letters'),
  rooms: z.array(RoomConfig).min(1),
  /** Used for estimates until real consultation durations have been measured. */
  defaultConsultMinutes: z.number().positive().max(240).default(10),
  /**
   * An online department: its patients wait at home (the same queue, their
   * ticket page shows their position) and a doctor admits them to a video
   * consultation (docs/consultations.md, "Admission"). Its rooms are the
   * doctors' virtual consulting rooms.
   */
  online: z.boolean().default(false),
});
/** Speech-to-text and emotion scores for the clinic's video consultations (ai-workers). */
export const ClinicAiConfig = z.object({
  enabled: z.boolean().default(false),
  /** The language consultations are transcribed in unless the admission names another. */
  language: ConsultLanguage.default('ja'),
});
/**
 * The clinic's rule for recording its video consultations. Recording also
 * always needs every participant present to consent, and a media-server
 * with RECORDING_KEY; `allowed: false` keeps it off for the clinic whatever
 * its clinicians ask (RECORDING_NOT_ALLOWED).
 */
export const ClinicRecordingConfig = z.object({
  allowed: z.boolean().default(true),
});
/** Languages a display can speak a call in. */
export const SPOKEN_CALL_LANGUAGES = ['ja', 'en'] as const;
export const SpokenCallLanguage = z.enum(SPOKEN_CALL_LANGUAGES);
export type SpokenCallLanguage = z.infer<typeof SpokenCallLanguage>;

export const ClinicConfig = z
  .object({
    id: Id,
    name: LocalizedText,
    timezone: z.string().default('Asia/Tokyo'),
    departments: z.array(DepartmentConfig).min(1),
    /** A called ticket that has been recalled this many times and is recalled again becomes a no-show. */
    noShowAfterRecalls: z.number().int().min(0).max(10).default(2),
    /** Consultations shorter than this (a mistaken press) are left out of the measured durations. */
    minMeasuredConsultSeconds: z.number().int().min(0).max(3600).default(30),
    /** How long patient data given at check-in is kept. */
    patientDataRetentionHours: z.number().positive().max(24 * 90).default(24),
    /**
     * How long a patient's token keeps working after their ticket ended (done, cancelled, no-show): to read
     * the chat of the visit. Then their sockets are disconnected (`hub:session-ended`, AUTH_EXPIRED).
     */
    patientAccessGraceMinutes: z.number().min(0).max(24 * 60).default(60),
    /** Off unless configured: admission then queues no AI session. */
    ai: ClinicAiConfig.default({ enabled: false, language: 'ja' }),
    /** Whether its consultations may be recorded (with everyone's consent); on unless configured off. */
    recording: ClinicRecordingConfig.default({ allowed: true }),
    /**
     * The languages displays speak a call in, in this order, after the chime
     * (each language at most once; empty: the chime only).
     */
    spokenCallLanguages: z
      .array(SpokenCallLanguage)
      .max(SPOKEN_CALL_LANGUAGES.length)
      .refine((languages) => new Set(languages).size === languages.length, 'each language at most once')
      .default(['ja', 'en']),
    /** How long what a video consultation leaves behind is kept (retention.ts); every period has a default. */
    retention: ClinicRetentionConfig.default(DEFAULT_RETENTION),
    /** When the clinic is open (its timezone): check-in from phones is taken only then. */
    openingHours: OpeningHours.optional(),
    /** Check-in without reception: kiosk, QR poster, appointment arrival (self-checkin.ts). */
    selfCheckin: SelfCheckinConfig.default(DEFAULT_SELF_CHECKIN),
  })
  .superRefine((clinic, ctx) => {
    const deptIds = new Set<string>();
    const roomIds = new Set<string>();
    for (const dept of clinic.departments) {
      if (deptIds.has(dept.id)) ctx.addIssue({ code: 'custom', message: `duplicate department id ${dept.id}` });
      deptIds.add(dept.id);
      for (const room of dept.rooms) {
        if (roomIds.has(room.id)) ctx.addIssue({ code: 'custom', message: `duplicate room id ${room.id}` });
        roomIds.add(room.id);
      }
    }
    for (const dept of clinic.selfCheckin.departments ?? []) {
      if (!deptIds.has(dept)) ctx.addIssue({ code: 'custom', path: ['selfCheckin', 'departments'], message: `no department ${dept}` });
    }
    if (clinic.selfCheckin.mobile && !clinic.openingHours) {
      ctx.addIssue({ code: 'custom', path: ['selfCheckin', 'mobile'], message: 'check-in from phones needs openingHours (it is taken only while the clinic is open)' });
    }
  });
export type ClinicConfig = z.infer<typeof ClinicConfig>;
export type DepartmentConfig = z.infer<typeof DepartmentConfig>;

/** What any connected client may know about a clinic: names of departments and rooms, nothing about people. */
export interface PublicClinic {
  id: string;
  name: LocalizedText;
  timezone: string;
  /** The languages displays speak a call in, in order (`spokenCallLanguages` of the clinic's configuration). */
  spokenCallLanguages: SpokenCallLanguage[];
  departments: {
    id: string;
    name: LocalizedText;
    prefix: string;
    /** `open`: the room is seeing patients (the clinic's settings); only open rooms count in wait estimates. */
    rooms: { id: string; name: LocalizedText; open: boolean }[];
    /** Patients of an online department are seen by video (absent: false). */
    online?: boolean;
  }[];
}

export function toPublicClinic(clinic: ClinicConfig): PublicClinic {
  return {
    id: clinic.id,
    name: clinic.name,
    timezone: clinic.timezone,
    spokenCallLanguages: clinic.spokenCallLanguages,
    departments: clinic.departments.map((d) => ({
      id: d.id,
      name: d.name,
      prefix: d.prefix,
      rooms: d.rooms.map((r) => ({ id: r.id, name: r.name, open: r.open })),
      ...(d.online ? { online: true } : {}),
    })),
  };
}
