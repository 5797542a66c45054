import { z } from 'zod';
import { ClinicConfig } from './clinic.js';

/**
 * A clinic's settings as the hub keeps them (in Redis; the clinic's file in
 * CLINICS_DIR is only the seed of a new clinic): the same schema as the file
 * (ClinicConfig), with a version that grows by one on every change.
 */
export interface ClinicSettingsRecord {
  clinic: string;
  /** 1 for the seed from the file; every change adds one. */
  version: number;
  updatedAt: number;
  /** Token subject of who made the last change ("seed" for the file). */
  updatedBy: string;
  settings: ClinicConfig;
}

/**
 * `PUT /api/clinics/:id/settings`: the whole clinic, validated exactly as a
 * clinic file is. `ifVersion`: refuse (SETTINGS_VERSION_CONFLICT) when someone
 * changed the settings since this version was read.
 */
export const SettingsUpdateRequest = z.object({
  settings: ClinicConfig,
  ifVersion: z.number().int().min(1).optional(),
});
export type SettingsUpdateRequest = z.input<typeof SettingsUpdateRequest>;

/** `PUT /api/clinics/:id/rooms/:room`: staff and the clinic's manager open or close a room. */
export const RoomStateRequest = z.object({ open: z.boolean() }).strict();
export type RoomStateRequest = z.infer<typeof RoomStateRequest>;

/** `PUT /api/clinics/:id/rooms/:room` answers with the room and the new settings version. */
export interface RoomStateResult {
  room: string;
  dept: string;
  open: boolean;
  version: number;
}

/** The audit action of a change of settings (before and after carry the changed parts). */
export const SETTINGS_AUDIT_ACTION = 'settings.update';
