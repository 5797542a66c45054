import { CLINICIAN_ROLES, type Ack, type PresenceStatus, type Role, type StaffPresence } from '@clinic-hub/protocol';
import type { Logger } from '@clinic-hub/platform/logging';
import type { ChatStore } from './chat-store.js';

const HEARTBEAT_MS = 5_000;
/** A node not heard from for this long has died: its clinicians' sockets are forgotten. */
const NODE_STALE_MS = 4 * HEARTBEAT_MS;

export interface ChatPresenceOptions {
  nodeId: string;
  clinicIds: string[];
  logger: Logger;
}

/**
 * Staff presence (online / busy / away), shared by every hub node through
 * Redis. Each clinician chat socket is registered under its node; a member
 * is present while any of their sockets is, on any node, and goes offline
 * when the last one disconnects. Nodes beat every few seconds; the sockets
 * of a node that stopped beating (it crashed) are forgotten by the others.
 */
export class ChatPresence {
  private timer: NodeJS.Timeout | null = null;
  /** This node's clinician sockets; those not `registered` (Redis was down) are registered on the next beat. */
  private readonly sockets = new Map<string, { clinic: string; member: { sub: string; role: Role }; registered: boolean }>();

  constructor(
    private readonly store: ChatStore,
    private readonly options: ChatPresenceOptions,
  ) {}

  static tracks(role: Role): boolean {
    return CLINICIAN_ROLES.includes(role);
  }

  /** Forgets what this node id registered in an earlier life, then beats. */
  async start(): Promise<void> {
    await Promise.all(this.options.clinicIds.map((clinic) => this.store.presenceSweep(clinic, this.options.nodeId, NODE_STALE_MS, true)));
    this.timer = setInterval(() => void this.beat(), HEARTBEAT_MS);
    this.timer.unref();
  }

  /** Registers a clinician's socket; their status stays what it was (online for a first socket). */
  async connect(clinic: string, member: { sub: string; role: Role }, socketId: string): Promise<Ack<{ presence: StaffPresence }>> {
    const entry = { clinic, member, registered: false };
    this.sockets.set(socketId, entry);
    const result = await this.store.presenceSet(clinic, member, socketId, this.options.nodeId, '');
    entry.registered = result.ok;
    return result;
  }

  set(clinic: string, member: { sub: string; role: Role }, socketId: string, status: PresenceStatus): Promise<Ack<{ presence: StaffPresence }>> {
    return this.store.presenceSet(clinic, member, socketId, this.options.nodeId, status);
  }

  disconnect(clinic: string, member: string, socketId: string): Promise<void> {
    this.sockets.delete(socketId);
    return this.store.presenceDrop(clinic, member, socketId);
  }

  list(clinic: string): Promise<StaffPresence[]> {
    return this.store.presenceList(clinic);
  }

  /** Stops beating and takes this node's sockets out of presence (their clinicians go offline unless present elsewhere). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.sockets.clear();
    await Promise.all(this.options.clinicIds.map((clinic) => this.store.presenceSweep(clinic, this.options.nodeId, NODE_STALE_MS, true))).catch(
      (error: Error) => this.options.logger.debug({ err: error.message }, 'presence clean-up at stop failed; other nodes will do it'),
    );
  }

  private async beat(): Promise<void> {
    for (const [socketId, entry] of this.sockets) {
      if (entry.registered) continue;
      try {
        entry.registered = (await this.store.presenceSet(entry.clinic, entry.member, socketId, this.options.nodeId, '')).ok;
        // Gone while it was being registered: take it out again.
        if (!this.sockets.has(socketId)) await this.store.presenceDrop(entry.clinic, entry.member.sub, socketId);
      } catch {
        // Still unreachable: next beat.
      }
    }
    for (const clinic of this.options.clinicIds) {
      try {
        const offline = await this.store.presenceSweep(clinic, this.options.nodeId, NODE_STALE_MS, false);
        if (offline > 0) this.options.logger.info({ clinic, offline }, 'clinicians of a stopped hub node are offline');
      } catch (error) {
        this.options.logger.debug({ err: (error as Error).message }, 'presence heartbeat failed');
      }
    }
  }
}
