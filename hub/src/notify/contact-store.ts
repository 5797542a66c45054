import type { RedisClient } from '@clinic-hub/platform/redis';
import { NotifyContact } from '@clinic-hub/protocol';
import { notifyClinicKeys } from './notify-keys.js';

/** An appointment's reminders: who, when, and which jobs to remove on cancel. */
export interface AppointmentRecord {
  contact: NotifyContact;
  startsAt: number;
  dept?: string;
  room?: string;
  jobIds: string[];
  /** While the patient has linked LINE: the contact the booking system gave, which unlinking restores. */
  linkedFrom?: NotifyContact;
}

/**
 * Per-patient contact and preferences (patient data). Kept only as long as
 * needed: a ticket's for the clinic's retention period, an appointment's
 * until the retention period after the appointment. Never logged.
 */
export class ContactStore {
  constructor(private readonly redis: RedisClient) {}

  async setTicketContact(clinic: string, ticketId: string, contact: NotifyContact, retentionSeconds: number): Promise<void> {
    await this.redis.set(notifyClinicKeys(clinic).ticketContact(ticketId), JSON.stringify(contact), 'EX', Math.max(1, retentionSeconds));
  }

  async ticketContact(clinic: string, ticketId: string): Promise<NotifyContact | null> {
    return parseContact(await this.redis.get(notifyClinicKeys(clinic).ticketContact(ticketId)));
  }

  /** Contacts of several tickets in one round trip; tickets without one are left out. */
  async ticketContacts(clinic: string, ticketIds: string[]): Promise<Map<string, NotifyContact>> {
    const found = new Map<string, NotifyContact>();
    if (ticketIds.length === 0) return found;
    const keys = notifyClinicKeys(clinic);
    const raws = await this.redis.mget(ticketIds.map((id) => keys.ticketContact(id)));
    raws.forEach((raw, i) => {
      const contact = parseContact(raw);
      if (contact) found.set(ticketIds[i]!, contact);
    });
    return found;
  }

  async clearTicketContact(clinic: string, ticketId: string): Promise<void> {
    await this.redis.del(notifyClinicKeys(clinic).ticketContact(ticketId));
  }

  async setAppointment(clinic: string, appointmentId: string, record: AppointmentRecord, expiresAt: number): Promise<void> {
    await this.redis.set(notifyClinicKeys(clinic).appointment(appointmentId), JSON.stringify(record), 'PXAT', Math.round(expiresAt));
  }

  async appointment(clinic: string, appointmentId: string): Promise<AppointmentRecord | null> {
    const raw = await this.redis.get(notifyClinicKeys(clinic).appointment(appointmentId));
    if (!raw) return null;
    const record = JSON.parse(raw) as AppointmentRecord;
    const contact = NotifyContact.safeParse(record.contact);
    const linkedFrom = record.linkedFrom ? NotifyContact.safeParse(record.linkedFrom) : null;
    if (!contact.success) return null;
    const { linkedFrom: _raw, ...rest } = record;
    return { ...rest, contact: contact.data, ...(linkedFrom?.success ? { linkedFrom: linkedFrom.data } : {}) };
  }

  /** Changes an existing appointment's contact (LINE linking and unlinking), keeping its expiry; false when it is gone. */
  async setAppointmentContact(clinic: string, appointmentId: string, contact: NotifyContact, linkedFrom: NotifyContact | null): Promise<boolean> {
    const record = await this.appointment(clinic, appointmentId);
    if (!record) return false;
    const { linkedFrom: _previous, ...rest } = record;
    const updated: AppointmentRecord = { ...rest, contact, ...(linkedFrom ? { linkedFrom } : {}) };
    return (await this.redis.set(notifyClinicKeys(clinic).appointment(appointmentId), JSON.stringify(updated), 'KEEPTTL', 'XX')) === 'OK';
  }

  async deleteAppointment(clinic: string, appointmentId: string): Promise<void> {
    await this.redis.del(notifyClinicKeys(clinic).appointment(appointmentId));
  }
}

function parseContact(raw: string | null): NotifyContact | null {
  if (!raw) return null;
  const parsed = NotifyContact.safeParse(JSON.parse(raw));
  return parsed.success ? parsed.data : null;
}
