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
  /** As its master sees it (INFO replication): `online` once in sync, `wait_bgsave` or `send_bulk` while a full copy is under way; on a Redis Cluster `disconnected` for a replica the cluster knows that is not connected to its master, `unknown` when its master could not be asked. */
  state: string;
  /** How far behind its master's replication offset it is, in bytes. */
  lagBytes: number;
  /** Seconds since its last acknowledgement (a replica sends one every second); null while it is not connected to its master. */
  lagSeconds: number | null;
  /** `online` and acknowledged within the last 2 s: a replica wait (`HUB_REDIS_ACK_REPLICAS`) can count on it. */
  inSync: boolean;
}

/** How many hash slots a Redis Cluster has (0–16383): all must be served for the whole cluster to answer. */
export const REDIS_CLUSTER_SLOTS = 16384;

/** Slot ranges as people read them: `0-5460,5462`. */
export const slotRangesText = (slots: readonly (readonly [number, number])[]) =>
  slots.map(([first, last]) => (first === last ? `${first}` : `${first}-${last}`)).join(',');

/** One shard of a Redis Cluster: a master, the hash slots it serves and its replicas. */
export interface RedisShardStatus {
  /** host:port of the master. */
  master: string;
  /**
   * False while the cluster holds the master failed, or while it does not
   * answer (killed, not yet failed by the cluster): its slots are not served
   * until it answers again or a replica takes over. Its replicas are then
   * `unknown`.
   */
  masterUp: boolean;
  /** Inclusive ranges of hash slots (0–16383). */
  slots: [number, number][];
  slotCount: number;
  replicas: RedisReplicaStatus[];
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
    /** How the hub reaches Redis: one Redis (`REDIS_URL`), Sentinel (`REDIS_SENTINELS`) or a Redis Cluster (`REDIS_CLUSTER_NODES`). */
    mode?: 'single' | 'sentinel' | 'cluster';
    /** host:port of the master the hub writes to (with Sentinel: the one it found after the latest failover; on a cluster: every master, comma-separated). */
    master?: string | null;
    /** The master's replicas (on a cluster: every master's replicas connected to it). */
    replicas?: RedisReplicaStatus[];
    /** On a Redis Cluster: each shard, by its first slot. */
    shards?: RedisShardStatus[];
    /** On a Redis Cluster: what an operator must see to, in English (a shard with no replica in sync, a failed master, hash slots no master serves); empty when none. */
    warnings?: string[];
  };
  clinics: ClinicQueueSummary[];
  /** Media-server nodes alive now (their heartbeat has not expired). */
  mediaNodes: MediaNodeInfo[];
}
