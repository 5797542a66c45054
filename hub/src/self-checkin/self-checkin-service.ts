import type { RedisClient } from '@clinic-hub/platform/redis';
import {
  estimateWaitMinutes,
  openRoomsOf,
  protocolError,
  toPublicClinic,
  type ClinicConfig,
  type LineLink,
  type ProtocolError,
  type Role,
  type SelfCheckinBody,
  type SelfCheckinInfo,
  type SelfCheckinResult,
  fail,
  type Ack,
} from '@clinic-hub/protocol';
import type { z } from 'zod';
import type { SelfCheckinBody as SelfCheckinBodySchema } from '@clinic-hub/protocol';
import { appendAudit } from '../audit/audit-log.js';
import type { AppointmentService } from '../appointments/index.js';
import type { ClinicRegistry } from '../clinics/clinic-registry.js';
import { checkinPatient, type PatientCheckinDeps } from '../queue/index.js';
import { CheckinLimiter, type SelfCheckinLimits } from './checkin-limits.js';
import { isOpen, nextOpening } from './opening-hours.js';
import { PosterStore } from './poster-store.js';

type ParsedBody = z.output<typeof SelfCheckinBodySchema>;

/**
 * Who checks in: the kiosk (its token), reception on the patient's behalf, a
 * phone from the clinic's poster, or a phone following an appointment's
 * arrival link. Phones carry no token: the poster's id or the arrival code
 * is what lets them in, and their address is what they are counted by.
 */
export interface SelfCheckinCaller {
  via: 'kiosk' | 'reception' | 'mobile' | 'arrival';
  /** The token's sub, or for phones `poster:<id>` / `arrival`. */
  actor: string;
  role: Role;
  address: string;
}

export interface SelfCheckinDeps extends PatientCheckinDeps {
  redis: RedisClient;
  clinics: ClinicRegistry;
  appointments: Pick<AppointmentService, 'byCode'>;
  limits: SelfCheckinLimits;
  /** A one-time LINE link for a new ticket; absent when the hub has no LINE account. */
  lineLink?: (clinic: string, ticketId: string, language: string) => Promise<LineLink>;
  now?: () => number;
}

/**
 * Check-ins by patients themselves: the same ticket, events and contact as a
 * check-in at reception (checkinPatient), behind the rules of the clinic's
 * `selfCheckin` and `openingHours` and the hub's self check-in limits.
 */
export class SelfCheckinService {
  readonly posters: PosterStore;
  private readonly limiter: CheckinLimiter;
  private readonly now: () => number;

  constructor(private readonly deps: SelfCheckinDeps) {
    this.posters = new PosterStore(deps.redis);
    this.now = deps.now ?? Date.now;
    this.limiter = new CheckinLimiter(deps.redis, deps.limits);
  }

  /** Departments patients may pick: the configured ones, or every department that is not online. */
  static offeredDepartments(clinic: ClinicConfig): string[] {
    return clinic.selfCheckin.departments ?? clinic.departments.filter((d) => !d.online).map((d) => d.id);
  }

  info(clinicId: string): Ack<{ info: SelfCheckinInfo }> {
    const clinic = this.deps.clinics.get(clinicId);
    if (!clinic) return fail('CLINIC_NOT_FOUND', clinicId);
    const languages = ['ja', 'en', ...clinic.selfCheckin.languages.filter((l) => l !== 'ja' && l !== 'en')] as SelfCheckinInfo['languages'];
    return {
      ok: true,
      info: {
        clinic: toPublicClinic(clinic),
        departments: SelfCheckinService.offeredDepartments(clinic),
        languages,
        mobile: {
          enabled: clinic.selfCheckin.mobile,
          open: clinic.selfCheckin.mobile && clinic.openingHours !== undefined && isOpen(clinic.openingHours, clinic.timezone, this.now()),
          openingHours: clinic.openingHours ?? null,
        },
        line: this.deps.lineLink !== undefined,
      },
    };
  }

  /** Why a phone may not check in from this poster now, or null when it may. */
  async mobileRefusal(clinicId: string, posterId: string): Promise<ProtocolError | null> {
    const clinic = this.deps.clinics.get(clinicId);
    if (!clinic) return protocolError('CLINIC_NOT_FOUND', clinicId);
    if (!clinic.selfCheckin.mobile) return protocolError('CHECKIN_MOBILE_OFF', 'selfCheckin.mobile is off');
    if (!(await this.posters.get(clinicId, posterId))) return protocolError('CHECKIN_MOBILE_OFF', 'this poster has been withdrawn');
    if (!clinic.openingHours || !isOpen(clinic.openingHours, clinic.timezone, this.now())) {
      const next = clinic.openingHours ? nextOpening(clinic.openingHours, clinic.timezone, this.now()) : null;
      return protocolError('CHECKIN_CLOSED', next ? `opens ${next} (${clinic.timezone})` : 'no opening hours in the next two weeks');
    }
    return null;
  }

  /** The appointment an arrival code names, for the page to show before the patient confirms (counted as a try of the code). */
  async appointmentOf(clinicId: string, code: string, who: string): Promise<Ack<{ appointment: { startsAt: number; dept: string } }>> {
    const tries = await this.limiter.mayTryCode(clinicId, who);
    if (!tries.ok) return fail('RATE_LIMITED', `${tries.scope}; retry in ${tries.retryAfterMs} ms`);
    const record = await this.deps.appointments.byCode(clinicId, code);
    if (!record) {
      await this.limiter.wrongCode(clinicId, who);
      return fail('APPOINTMENT_NOT_FOUND');
    }
    return { ok: true, appointment: { startsAt: record.startsAt, dept: record.dept } };
  }

  async checkin(clinicId: string, input: ParsedBody | SelfCheckinBody, caller: SelfCheckinCaller): Promise<Ack<SelfCheckinResult>> {
    const clinic = this.deps.clinics.get(clinicId);
    if (!clinic) return fail('CLINIC_NOT_FOUND', clinicId);
    const language = input.language ?? 'ja';
    if (caller.via === 'mobile') {
      const refusal = await this.mobileRefusal(clinicId, (input as ParsedBody).poster ?? '');
      if (refusal) return { ok: false, error: refusal };
    }
    const phone = caller.via === 'mobile' || caller.via === 'arrival';
    const limited = await this.limiter.take(clinicId, {
      ...(caller.via === 'kiosk' ? { kiosk: caller.actor } : {}),
      ...(phone ? { mobile: true, address: caller.address } : {}),
    });
    if (!limited.ok) return fail('RATE_LIMITED', `${limited.scope} limit; retry in ${limited.retryAfterMs} ms`);

    let dept: string;
    let appointment: { id: string; startsAt: number } | undefined;
    if (input.appointmentCode !== undefined) {
      const who = caller.via === 'kiosk' ? `kiosk:${caller.actor}` : `address:${caller.address}`;
      const tries = await this.limiter.mayTryCode(clinicId, who);
      if (!tries.ok) return fail('RATE_LIMITED', `${tries.scope}; retry in ${tries.retryAfterMs} ms`);
      const record = await this.deps.appointments.byCode(clinicId, input.appointmentCode);
      if (!record) {
        await this.limiter.wrongCode(clinicId, who);
        return fail('APPOINTMENT_NOT_FOUND');
      }
      dept = record.dept;
      appointment = { id: record.id, startsAt: record.startsAt };
    } else {
      dept = input.dept!;
      if (!clinic.departments.some((d) => d.id === dept)) return fail('QUEUE_DEPT_NOT_FOUND', dept);
      if (caller.via !== 'reception' && !SelfCheckinService.offeredDepartments(clinic).includes(dept)) return fail('CHECKIN_DEPT_NOT_OFFERED', dept);
    }

    const locale = language === 'ja' ? 'ja' : 'en';
    const result = await checkinPatient(this.deps, clinicId, {
      dept,
      priority: 'normal',
      notify: input.phone ? { channel: 'sms', address: input.phone, locale } : { channel: 'in_app', locale },
      requestId: input.requestId,
      ...(appointment ? { appointment } : {}),
    });
    if (!result.ok) {
      if (result.error.code === 'APPOINTMENT_TOO_EARLY' && appointment) {
        const from = appointment.startsAt - clinic.selfCheckin.arrivalOpensMinutesBefore * 60_000;
        return fail('APPOINTMENT_TOO_EARLY', `from ${new Date(from).toISOString()}`);
      }
      return result;
    }
    const ticket = result.event.ticket;
    // Arriving again returns the first arrival's ticket; once that visit is over the code is spent.
    if (appointment && result.replayed && !(await this.deps.queue.ticket(clinicId, ticket.id))) return fail('APPOINTMENT_ALREADY_ARRIVED');
    await appendAudit(this.deps.redis, clinicId, {
      actor: caller.actor,
      role: caller.role,
      action: `checkin.${caller.via}`,
      subject: ticket.id,
      from: caller.address,
    });
    const position = await this.position(clinicId, ticket.id, ticket.dept);
    const line = this.deps.lineLink ? await this.deps.lineLink(clinicId, ticket.id, language) : null;
    return {
      ...result,
      appointment: appointment ? { startsAt: appointment.startsAt, late: ticket.issuedAt > appointment.startsAt + clinic.selfCheckin.appointmentLateMinutes * 60_000 } : null,
      line,
      ...position,
    };
  }

  /** Where the new ticket stands: how many wait before it and the one wait estimate (protocol/src/wait.ts). */
  private async position(clinicId: string, ticketId: string, dept: string): Promise<{ ahead: number; waitMinutes: number }> {
    const snap = await this.deps.queue.snapshot(clinicId);
    if (!snap.ok) return { ahead: 0, waitMinutes: 0 };
    const { tickets, deptStats, clinic } = snap.snapshot;
    const waiting = tickets.filter((t) => t.dept === dept && t.status === 'waiting');
    const ahead = Math.max(0, waiting.findIndex((t) => t.id === ticketId));
    const stats = deptStats[dept] ?? { avgConsultMinutes: 10, samples: 0 };
    return { ahead, waitMinutes: estimateWaitMinutes(ahead, openRoomsOf(dept, clinic).length, stats) };
  }
}

