/**
 * What the hub's ops API (`/api/ops/...`) answers about the services behind
 * it, for `clinic` and dashboards. Ids and counts only: no patient data.
 */
import type { MediaNodeInfo } from './consult-events.js';
import type { Role } from './roles.js';

/** What an AI worker says about itself every AI_WORKER_HEARTBEAT_MS (no consultation ids, no patient data). */
export interface AiWorkerInfo {
  id: string;
  host: string;
  pid: number;
  startedAt: number;
  beatAt: number;
  concurrency: number;
  sessions: number;
  recordings: number;
  stt: string;
  emotion: string;
  /** Seconds behind the audio (largest over its sessions). */
  lagSeconds: number;
  stopping: boolean;
}

/** BullMQ states whose counts are reported per job queue. */
export const JOB_QUEUE_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'failed', 'completed', 'paused'] as const;
export type JobQueueState = (typeof JOB_QUEUE_STATES)[number];

export interface JobQueueDepth {
  queue: string;
  counts: Record<JobQueueState, number>;
  /** Worker connections BullMQ sees on the queue (any service's workers). */
  workers: number;
}

/** `GET /api/ops/workers`: the AI workers alive now and the depth of every job queue. */
export interface OpsWorkers {
  checkedAt: number;
  workers: AiWorkerInfo[];
  queues: JobQueueDepth[];
}

/** A hub node's heartbeat, as `GET /api/ops/status` lists it (`clinic status`). */
export interface NodeStatus {
  nodeId: string;
  url: string;
  server: string;
  pid: number;
  startedAt: number;
  /** Random per process: a node restarted under the same id is a new instance, and its old instance's screens are gone. */
  instance?: string;
  lastSeen: number;
  clients: Partial<Record<Role, number>>;
  rssBytes: number;
}

/** A display screen's presence, as `GET /api/ops/displays` lists it (`clinic displays`). */
export interface DisplayPresence {
  /** Socket id: one entry per connected screen. */
  id: string;
  /** The display token's subject: which screen this is. */
  sub: string;
  node: string;
  /** The node process the screen is connected to (NodeStatus.instance). */
  instance?: string;
  address: string;
  connectedAt: number;
  /** While online, its node's last heartbeat; once gone, when it was last seen. */
  lastSeen: number;
  /** False within DISPLAY_GONE_AFTER_MS of the screen going, whatever happened to its node. */
  online: boolean;
}

export interface ClinicQueueSummary {
  id: string;
  seq: number;
  /** Waiting tickets per department. */
  waiting: Record<string, number>;
  called: number;
  inConsultation: number;
  /** Video consultation rooms open now (admitted, live, not ended). */
  liveRooms: number;
}

export interface RedisReplicaStatus {
  address: string;
  state: string;
  lagBytes: number;
  lagSeconds: number;
}

/** What `GET /api/ops/status` answers (`clinic status`). */
export interface OpsStatus {
  nodes: (NodeStatus & { up: boolean })[];
  redis: {
    up: boolean;
    version?: string;
    usedMemoryBytes?: number;
    aof?: boolean;
    connectedClients?: number;
    /** How the hub reaches Redis: one Redis (`REDIS_URL`) or Sentinel (`REDIS_SENTINELS`). */
    mode?: 'single' | 'sentinel' | 'cluster';
    /** host:port of the master the hub writes to (with Sentinel: the one it found after the latest failover). */
    master?: string | null;
    /** The master's replicas: `online` once in sync; lag in bytes behind the master and seconds since their last acknowledgement. */
    replicas?: RedisReplicaStatus[];
  };
  clinics: ClinicQueueSummary[];
  /** Media-server nodes alive now (their heartbeat has not expired). */
  mediaNodes: MediaNodeInfo[];
}
