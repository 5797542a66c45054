import { randomBytes } from 'node:crypto';
import type { RedisClient, ReplicaAck } from '@clinic-hub/platform/redis';
import {
  consultPagePath,
  consultRoleOf,
  retentionMs,
  type AdmitResult,
  type AiHistoryResult,
  type ConsultAiStatus,
  type ConsultAdmitted,
  type ConsultInvitePart,
  type ConsultLanguage,
  type ConsultListing,
  type ConsultPayloads,
  type ConsultRole,
  type Consultation,
  type EndResult,
  type MediaNodeInfo,
  type PublicTicket,
  type QueueEvent,
  type Role,
  type RoomPass,
  fail,
  type Ack,
} from '@clinic-hub/protocol';
import type { z } from 'zod';
import { appendAudit } from '../audit/audit-log.js';
import type { RoomTokenIssuer } from '@clinic-hub/platform/token-issuer';
import type { ClinicRegistry } from '../clinics/clinic-registry.js';
import { newOpaqueId } from '@clinic-hub/platform/ids';
import type { Logger } from '@clinic-hub/platform/logging';
import type { QueueService } from '../queue/index.js';
import type { AiSessionJobs } from './ai-session-jobs.js';
import { consultIndexKeys } from './consult-keys.js';
import { ConsultStore } from './consult-store.js';
import { listMediaNodes, pickMediaNode } from './media-nodes.js';


/** Who is asking, from their hub token. */
export interface ConsultCaller {
  sub: string;
  role: Role;
  /** Patients: the one ticket their token is for. */
  ticket: string | null;
  /** Where from, for the audit stream. */
  address: string;
}

type Payload<E extends keyof typeof ConsultPayloads> = z.output<(typeof ConsultPayloads)[E]>;

export interface ConsultServiceOptions {
  redis: RedisClient;
  clinics: ClinicRegistry;
  /** The waiting room: admission calls through it, ending finishes the ticket through it. */
  queue: Pick<QueueService, 'callNext' | 'callTicket' | 'start' | 'done' | 'ticket'>;
  /** null: MEDIA_TOKEN_SECRET is not set and consultations are off. */
  roomTokens: RoomTokenIssuer | null;
  roomTokenTtlSeconds: number;
  inviteTtlSeconds: number;
  /** Base URL of the hub's pages, for the links in passes. */
  publicUrl: () => string;
  /** null: no clinic has AI enabled. */
  aiJobs: AiSessionJobs | null;
  /** How long a clinic's recordings are kept (days), for the room tokens (the consent dialog says it); absent: not said. */
  recordingRetentionDays?: (clinic: string) => number;
  /** AI workers with a live heartbeat now (ops/job-workers.ts). */
  aiWorkersAlive?: () => Promise<number>;
  /** A consultation started (admitted) or ended, told once by the node that made the change (webhooks: consult.started, consult.ended). */
  onLifecycle?: (clinic: string, change: ConsultLifecycle) => void;
  /**
   * With replicas asked for (HUB_REDIS_ACK_REPLICAS), an admission is
   * acknowledged only once the clinic's shard's replicas hold its
   * consultation: on a Redis Cluster the AI session's wait is on the jobs
   * queue's shard, which does not cover the clinic's.
   */
  ack?: ReplicaAck;
  logger: Logger;
}

/** `reason`: who or what ended it (`ended`: a clinician; else the queue event that took the ticket away, e.g. `ticket.no_show`). */
export type ConsultLifecycle = { type: 'consult.started'; consultation: Consultation } | { type: 'consult.ended'; consultation: Consultation; reason: string };

/** What people are called in the room unless they say: their part, never an account name. */
const DEFAULT_NAMES: Record<ConsultRole, string> = {
  doctor: '医師 / Doctor',
  nurse: '看護師 / Nurse',
  patient: '患者 / Patient',
  interpreter: '通訳 / Interpreter',
  family: 'ご家族 / Family',
};

const isClinician = (role: Role) => role === 'admin' || role === 'staff' || role === 'doctor';

export function newConsultId(): string {
  return newOpaqueId(12);
}

/**
 * Video consultations on the hub's side (docs/consultations.md, "Admission"):
 * admitting a patient of an online department (the queue's call, a
 * consultation placed on a media-server node, room tokens), fresh passes for
 * its participants, invitations, ending it, and the AI results clinicians
 * read. Takes plain data, returns plain data; the handlers emit.
 */
export class ConsultService {
  readonly store: ConsultStore;

  constructor(private readonly options: ConsultServiceOptions) {
    this.store = new ConsultStore(options.redis);
  }

  get enabled(): boolean {
    return this.options.roomTokens !== null;
  }

  /**
   * Calls the next waiting ticket of an online department (or the named one)
   * to the clinician's room, creates its consultation on the least-loaded
   * media node, queues the AI session when the clinic has AI on, and returns
   * the clinician's pass with the patient's (for the handler to send to the
   * patient's ticket page).
   */
  async admit(clinicId: string, caller: ConsultCaller, input: Payload<'consult:admit'>): Promise<Ack<AdmitResult & { patient: ConsultAdmitted }>> {
    if (!this.enabled) return fail('CONSULT_DISABLED');
    if (!isClinician(caller.role)) return fail('AUTH_FORBIDDEN');
    const clinic = this.options.clinics.get(clinicId);
    if (!clinic) return fail('CLINIC_NOT_FOUND');
    const dept = clinic.departments.find((d) => d.id === input.dept);
    if (!dept) return fail('QUEUE_DEPT_NOT_FOUND', input.dept);
    if (!dept.online) return fail('CONSULT_DEPT_NOT_ONLINE', input.dept);
    if (!dept.rooms.some((r) => r.id === input.room)) return fail('QUEUE_ROOM_NOT_FOUND', input.room);

    // No patient is called to a room before there is somewhere to see them.
    const nodes = await listMediaNodes(this.options.redis);
    const node = pickMediaNode(nodes);
    if (!node) return fail('MEDIA_NODE_UNAVAILABLE', nodes.length > 0 ? 'every media-server node is draining' : 'no media-server node is running');

    const call = input.ticketId
      ? await this.options.queue.callTicket(clinicId, { ticketId: input.ticketId, dept: dept.id, room: input.room, requestId: input.requestId })
      : await this.options.queue.callNext(clinicId, { dept: dept.id, room: input.room, requestId: input.requestId }, { admission: true });
    if (!call.ok) return call;
    const ticket = call.event.ticket;

    const language: ConsultLanguage = input.language ?? clinic.ai.language;
    const written = await this.options.ack?.writing(consultIndexKeys(clinicId).ackFence);
    const made = await this.store.create(clinicId, {
      id: newConsultId(),
      dept: dept.id,
      ticket: ticket.id,
      number: ticket.number,
      room: input.room,
      node: node.id,
      language,
      by: caller.sub,
      ai: clinic.ai.enabled,
      retention: retentionMs(clinic.retention),
      recordingAllowed: clinic.recording.allowed,
    });
    // The consultation was written on another connection: the fence, written after it on the same shard, stands for it.
    if (written && !(await written())) {
      // The admission is made; its retry (same requestId) finds it and waits for the replica again.
      return fail('STORE_UNAVAILABLE', 'no replica confirmed the consultation in time (HUB_REDIS_ACK_REPLICAS); retry with the same requestId');
    }
    const consultation = await this.store.get(clinicId, made.id);
    if (!consultation) return fail('CONSULT_NOT_FOUND', made.id);
    if (clinic.ai.enabled && !(await this.queueAiSession(clinicId, consultation))) {
      // The admission is made; its retry (same requestId) finds it and waits for the replica again.
      return fail('STORE_UNAVAILABLE', 'no replica confirmed the AI session in time (HUB_REDIS_ACK_REPLICAS); retry with the same requestId');
    }

    const placed = await this.nodeFor(clinicId, consultation, nodes);
    if (!placed.ok) return placed;
    const part = consultRoleOf(caller.role) ?? 'doctor';
    const pass = this.pass(clinicId, placed.consultation, placed.node, { sub: caller.sub, part, name: input.name }, this.options.roomTokenTtlSeconds);
    const patientPass = this.patientPass(clinicId, placed.consultation, placed.node, undefined);
    if (made.created) this.options.logger.info({ consult: consultation.id, dept: dept.id, node: placed.node.id, by: caller.sub }, 'consultation admitted');
    // Told once the admission is confirmed, and again by its retry: the first try may have made it and not been
    // confirmed (the webhook event has one id, so a receiver sees it once).
    if (made.created || (call.replayed && placed.consultation.status !== 'ended')) {
      this.options.onLifecycle?.(clinicId, { type: 'consult.started', consultation: publicView(placed.consultation) });
    }
    return {
      ok: true,
      consultation: publicView(placed.consultation),
      pass,
      event: call.event,
      replayed: call.replayed,
      patient: { consultation: publicView(placed.consultation), pass: patientPass },
    };
  }

  /**
   * A fresh pass into a consultation that has not ended: a patient for their
   * own ticket's (nothing to name), a clinician for any of the clinic's
   * (audited: the room is patient data). A patient who joins starts their
   * ticket (called → in consultation).
   */
  async join(clinicId: string, caller: ConsultCaller, input: Payload<'consult:join'>): Promise<Ack<{ consultation: Consultation; pass: RoomPass }>> {
    if (!this.enabled) return fail('CONSULT_DISABLED');
    const placed = await this.openOnItsNode(clinicId, caller, input);
    if (!placed.ok) return placed;
    const part = consultRoleOf(caller.role);
    if (!part) return fail('AUTH_FORBIDDEN');
    let pass: RoomPass;
    if (part === 'patient') {
      pass = this.patientPass(clinicId, placed.consultation, placed.node, input.name);
      if (placed.ticket.status === 'called') {
        // The patient came in: the ticket starts, as when staff press start. Retries are harmless (same requestId, per call).
        // Named after the ticket, not the consultation: the queue keeps request ids a day, longer than a clinic may keep the consultation.
        const requestId = `consult-start_${placed.consultation.ticket}_${placed.ticket.calledAt ?? 0}`;
        const started = await this.options.queue.start(clinicId, { ticketId: placed.consultation.ticket, requestId });
        if (!started.ok && started.error.code !== 'QUEUE_INVALID_TRANSITION') return started;
      }
    } else {
      await this.audit(clinicId, caller, 'consult.join', placed.consultation.id);
      pass = this.pass(clinicId, placed.consultation, placed.node, { sub: caller.sub, part, name: input.name }, this.options.roomTokenTtlSeconds);
    }
    return { ok: true, consultation: publicView(placed.consultation), pass };
  }

  /** What a patient's ticket page is told when it (re)connects while its consultation is open; null when there is none. */
  async admittedFor(clinicId: string, caller: ConsultCaller): Promise<ConsultAdmitted | null> {
    if (!this.enabled || caller.role !== 'patient' || !caller.ticket) return null;
    const id = await this.store.idForTicket(clinicId, caller.ticket);
    const consultation = id ? await this.store.get(clinicId, id) : null;
    if (!consultation || consultation.status === 'ended') return null;
    const placed = await this.nodeFor(clinicId, consultation);
    if (!placed.ok) return null;
    return { consultation: publicView(placed.consultation), pass: this.patientPass(clinicId, placed.consultation, placed.node, undefined) };
  }

  /** A pass for someone without a hub account (interpreter, family): a link the clinician passes on. Longer lived: they cannot ask for a fresh one. */
  async invite(clinicId: string, caller: ConsultCaller, input: Payload<'consult:invite'>): Promise<Ack<{ consultation: Consultation; pass: RoomPass }>> {
    if (!this.enabled) return fail('CONSULT_DISABLED');
    if (!isClinician(caller.role)) return fail('AUTH_FORBIDDEN');
    const placed = await this.openOnItsNode(clinicId, caller, input);
    if (!placed.ok) return placed;
    const part: ConsultInvitePart = input.part;
    const sub = `guest:${randomBytes(9).toString('base64url')}`;
    const pass = this.pass(clinicId, placed.consultation, placed.node, { sub, part, name: input.name }, this.options.inviteTtlSeconds);
    this.options.logger.info({ consult: placed.consultation.id, part, by: caller.sub }, 'consultation invitation issued');
    return { ok: true, consultation: publicView(placed.consultation), pass };
  }

  /** Ends the consultation (media-server nodes close the room) and finishes its ticket as `queue:done` would. */
  async end(clinicId: string, caller: ConsultCaller, input: Payload<'consult:end'>): Promise<Ack<EndResult>> {
    if (!isClinician(caller.role)) return fail('AUTH_FORBIDDEN');
    const found = await this.resolve(clinicId, caller, input);
    if (!found.ok) return found;
    const { id, ticket } = found.consultation;
    const written = await this.options.ack?.writing(consultIndexKeys(clinicId).ackFence);
    const ended = await this.store.end(clinicId, id, caller.sub, 'ended');
    if (!ended.found) return fail('CONSULT_NOT_FOUND');
    let event: QueueEvent | null = null;
    // Also when it had ended already: a retry after the ticket could not be finished finishes it now.
    if ((await this.options.queue.ticket(clinicId, ticket)) !== null) {
      const done = await this.options.queue.done(clinicId, { ticketId: ticket, requestId: `consult-end_${ticket}` });
      if (done.ok) event = done.event;
      else if (done.error.code !== 'QUEUE_TICKET_NOT_FOUND' && done.error.code !== 'QUEUE_INVALID_TRANSITION') return done;
    }
    const consultation = await this.store.get(clinicId, id);
    if (!consultation) return fail('CONSULT_NOT_FOUND');
    if (ended.ended) {
      this.options.logger.info({ consult: id, by: caller.sub }, 'consultation ended');
      // Told before the wait: a retry finds it ended and tells nothing. Should a failover lose the end, the retry ends it again and tells it again under the same event id.
      this.options.onLifecycle?.(clinicId, { type: 'consult.ended', consultation: publicView(consultation), reason: 'ended' });
    }
    // The ticket's change waited for the replica already, and it came after the end on the clinic's shard; without one
    // (the ticket had left the queue) the fence, written after the end, stands for it.
    if (!event && written && !(await written())) {
      return fail('STORE_UNAVAILABLE', 'no replica confirmed the end in time (HUB_REDIS_ACK_REPLICAS); end it again');
    }
    return { ok: true, consultation: publicView(consultation), event, alreadyEnded: !ended.ended };
  }

  /** The ticket left the queue (done, cancelled, no-show, or the room's next patient was called): its consultation ends with it. */
  async endForTicket(clinicId: string, ticketId: string, reason: string): Promise<boolean> {
    const id = await this.store.idForTicket(clinicId, ticketId);
    if (!id) return false;
    const ended = await this.store.end(clinicId, id, 'queue', reason);
    if (ended.ended) {
      this.options.logger.info({ consult: id, reason }, 'consultation ended with its ticket');
      const consultation = this.options.onLifecycle ? await this.store.get(clinicId, id) : null;
      if (consultation) this.options.onLifecycle?.(clinicId, { type: 'consult.ended', consultation: publicView(consultation), reason });
    }
    return ended.ended;
  }

  /** A clinician follows the consultation's AI results live: allowed, and audited, here; the handler joins the room. */
  async subscribe(clinicId: string, caller: ConsultCaller, consult: string): Promise<Ack<{ consultation: Consultation }>> {
    if (!isClinician(caller.role)) return fail('AUTH_FORBIDDEN');
    const consultation = await this.store.get(clinicId, consult);
    if (!consultation) return fail('CONSULT_NOT_FOUND');
    await this.audit(clinicId, caller, 'consult.ai.subscribe', consult);
    return { ok: true, consultation: publicView(consultation) };
  }

  /** The consultation's final transcripts and emotion scores so far; every read is written to the audit stream first. */
  async aiHistory(clinicId: string, caller: ConsultCaller, input: Payload<'consult:ai-history'>): Promise<Ack<AiHistoryResult>> {
    if (!isClinician(caller.role)) return fail('AUTH_FORBIDDEN');
    const consultation = await this.store.get(clinicId, input.consult);
    if (!consultation) return fail('CONSULT_NOT_FOUND');
    await this.audit(clinicId, caller, 'consult.ai.read', input.consult);
    return { ok: true, ...(await this.store.aiResults(clinicId, input.consult, input.after, input.limit)) };
  }

  /** What the consultation's AI panel may expect: the clinic's live transcripts setting and the AI workers alive now. */
  async aiStatus(clinicId: string, caller: ConsultCaller, consult: string): Promise<Ack<{ ai: ConsultAiStatus }>> {
    if (!isClinician(caller.role)) return fail('AUTH_FORBIDDEN');
    const consultation = await this.store.get(clinicId, consult);
    if (!consultation) return fail('CONSULT_NOT_FOUND');
    const liveTranscripts = this.options.clinics.get(clinicId)?.ai.enabled ?? false;
    const workers = (await this.options.aiWorkersAlive?.()) ?? 0;
    return { ok: true, ai: { liveTranscripts, workers, checkedAt: Date.now() } };
  }

  /** Open consultations and the latest `recent` ones, newest first: for operations (no names). */
  async list(clinicId: string, recent: number): Promise<ConsultListing[]> {
    const ids = new Set([...(await this.store.openIds(clinicId)), ...(await this.store.recentIds(clinicId, recent))]);
    const all = await this.store.getMany(clinicId, [...ids]);
    return all.sort((a, b) => b.createdAt - a.createdAt || a.id.localeCompare(b.id));
  }

  countOpen(clinicId: string): Promise<number> {
    return this.store.countOpen(clinicId);
  }

  /** False when the session was queued but no replica confirmed it in time (HUB_REDIS_ACK_REPLICAS). */
  private async queueAiSession(clinic: string, consultation: Consultation): Promise<boolean> {
    try {
      return (await this.options.aiJobs?.add({ clinic, consult: consultation.id, language: consultation.language })) ?? true;
    } catch (error) {
      // The consultation goes on without live transcripts; a retried admission adds the job (same id).
      this.options.logger.warn({ err: (error as Error).message, consult: consultation.id }, 'could not queue the AI session');
      return true;
    }
  }

  /** The consultation a caller names, if they may act on it: a patient only on their own ticket's. */
  private async resolve(
    clinicId: string,
    caller: ConsultCaller,
    which: { consult?: string | undefined; ticketId?: string | undefined },
  ): Promise<Ack<{ consultation: ConsultListing }>> {
    let id: string | null;
    if (caller.role === 'patient') {
      // Whether another consultation exists is none of their business: the same answer either way.
      if (!caller.ticket || (which.ticketId !== undefined && which.ticketId !== caller.ticket)) return fail('CONSULT_NOT_PARTICIPANT');
      id = await this.store.idForTicket(clinicId, caller.ticket);
      if (which.consult !== undefined && which.consult !== id) return fail('CONSULT_NOT_PARTICIPANT');
      if (!id) return fail('CONSULT_NOT_FOUND', 'you have not been admitted yet');
    } else if (isClinician(caller.role)) {
      if (which.consult !== undefined) id = which.consult;
      else if (which.ticketId !== undefined) id = await this.store.idForTicket(clinicId, which.ticketId);
      else return fail('INVALID_PAYLOAD', 'consult: give consult or ticketId');
      if (!id) return fail('CONSULT_NOT_FOUND');
    } else {
      return fail('AUTH_FORBIDDEN');
    }
    const consultation = await this.store.get(clinicId, id);
    if (!consultation) return fail('CONSULT_NOT_FOUND');
    if (caller.role === 'patient' && consultation.ticket !== caller.ticket) return fail('CONSULT_NOT_PARTICIPANT');
    return { ok: true, consultation };
  }

  /** What a join and an invite start from: the consultation the caller names (resolve), still open with its ticket (stillOpen), on its live media node (nodeFor). */
  private async openOnItsNode(
    clinicId: string,
    caller: ConsultCaller,
    which: { consult?: string | undefined; ticketId?: string | undefined },
  ): Promise<Ack<{ consultation: ConsultListing; node: MediaNodeInfo; ticket: PublicTicket }>> {
    const found = await this.resolve(clinicId, caller, which);
    if (!found.ok) return found;
    const open = await this.stillOpen(clinicId, found.consultation);
    if (!open.ok) return open;
    const placed = await this.nodeFor(clinicId, found.consultation);
    if (!placed.ok) return placed;
    return { ...placed, ticket: open.ticket };
  }

  /** CONSULT_ENDED unless the consultation and its ticket are both still on; one whose ticket has left the queue is ended now. */
  private async stillOpen(clinicId: string, consultation: Consultation): Promise<Ack<{ ticket: PublicTicket }>> {
    if (consultation.status === 'ended') return fail('CONSULT_ENDED');
    const ticket = await this.options.queue.ticket(clinicId, consultation.ticket);
    if (!ticket) {
      await this.store.end(clinicId, consultation.id, 'queue', 'ticket-left');
      return fail('CONSULT_ENDED');
    }
    return { ok: true, ticket };
  }

  /**
   * The live media node hosting the consultation. When its node has gone (its
   * heartbeat expired), the consultation moves to the least-loaded live one:
   * participants rejoin there with fresh passes.
   */
  private async nodeFor(
    clinicId: string,
    consultation: ConsultListing,
    known?: MediaNodeInfo[],
  ): Promise<Ack<{ consultation: ConsultListing; node: MediaNodeInfo }>> {
    const nodes = known ?? (await listMediaNodes(this.options.redis));
    const current = nodes.find((n) => n.id === consultation.node);
    if (current) return { ok: true, consultation, node: current };
    const replacement = pickMediaNode(nodes);
    if (!replacement) return fail('MEDIA_NODE_UNAVAILABLE', 'the consultation\'s media-server node has gone and no other is available');
    const now = await this.store.move(clinicId, consultation.id, consultation.node, replacement.id);
    if (now === null) return fail('CONSULT_ENDED');
    const node = nodes.find((n) => n.id === now);
    if (!node) return fail('MEDIA_NODE_UNAVAILABLE');
    if (now === replacement.id) this.options.logger.warn({ consult: consultation.id, from: consultation.node, to: now }, 'consultation moved off a media node that has gone');
    return { ok: true, consultation: { ...consultation, node: now, status: now === replacement.id ? 'waiting' : consultation.status }, node };
  }

  private patientPass(clinicId: string, consultation: Consultation, node: MediaNodeInfo, name: string | undefined): RoomPass {
    return this.pass(clinicId, consultation, node, { sub: `patient:${consultation.ticket}`, part: 'patient', name }, this.options.roomTokenTtlSeconds);
  }

  private pass(
    clinic: string,
    consultation: Consultation,
    node: MediaNodeInfo,
    who: { sub: string; part: ConsultRole; name: string | undefined },
    ttlSeconds: number,
  ): RoomPass {
    const issuer = this.options.roomTokens;
    if (!issuer) throw new Error('room tokens are not configured');
    const retention = this.options.recordingRetentionDays?.(clinic);
    const { token, expiresAt } = issuer.issue(
      {
        sub: who.sub,
        clinic,
        consult: consultation.id,
        part: who.part,
        name: who.name ?? DEFAULT_NAMES[who.part],
        ...(retention ? { recordingRetentionDays: retention } : {}),
      },
      ttlSeconds,
    );
    const pass = { token, mediaUrl: node.url };
    return { consult: consultation.id, part: who.part, sub: who.sub, token, expiresAt, mediaUrl: node.url, pageUrl: `${this.options.publicUrl()}${consultPagePath(pass)}` };
  }

  private async audit(clinic: string, caller: ConsultCaller, action: string, subject: string): Promise<void> {
    await appendAudit(this.options.redis, clinic, { actor: caller.sub, role: caller.role, action, subject, from: caller.address });
  }
}

/** The consultation without what only operations see. */
function publicView(listing: ConsultListing): Consultation {
  const { participants: _participants, ...consultation } = listing;
  return consultation;
}
