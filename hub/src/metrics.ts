import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { collectProcessMetrics } from '@clinic-hub/platform/process';
import { NAMESPACES, ROLES, type Role } from '@clinic-hub/protocol';
import type { RedisReplication } from '@clinic-hub/platform/redis';

const WINDOW_SECONDS = 10;

export interface NodeWatch {
  ready: () => boolean;
  actionsInFlight: () => number;
  clients: () => Iterable<{ role: Role; namespace: string; count: number }>;
}

/** The hub's Prometheus metrics; one registry per hub so several hubs can share a process in tests. */
export class HubMetrics {
  readonly registry = new Registry();
  readonly connectedClients: Gauge<'role' | 'namespace'>;
  readonly sessionsEnded: Counter<'code'>;
  readonly eventsTotal: Counter<'type'>;
  readonly eventLatency: Histogram;
  readonly actionDuration: Histogram<'action' | 'outcome'>;
  readonly errorsTotal: Counter<'code'>;
  readonly chatMessagesTotal: Counter;
  readonly fanoutDuplicatesDropped: Counter;
  readonly chatDeliveryLatency: Histogram;
  readonly replicaAck: Histogram<'outcome'>;
  private readonly perSecond: number[] = new Array(WINDOW_SECONDS).fill(0);
  private currentSecond = Math.floor(Date.now() / 1000);
  private node: NodeWatch = { ready: () => true, actionsInFlight: () => 0, clients: () => [] };
  private replication: () => Promise<RedisReplication | null> = async () => null;

  constructor(nodeId: string) {
    this.registry.setDefaultLabels({ node: nodeId });
    const self = this;
    this.connectedClients = new Gauge({
      name: 'clinic_hub_connected_clients',
      help: 'Connected Socket.IO sockets on this node, by role and namespace (every namespace: a patient on /queue and /chat is two)',
      labelNames: ['role', 'namespace'],
      registers: [this.registry],
      collect() {
        // Every role and namespace, zeros included, so that a series never vanishes.
        for (const role of ROLES) for (const namespace of Object.values(NAMESPACES)) this.set({ role, namespace }, 0);
        for (const { role, namespace, count } of self.node.clients()) this.set({ role, namespace }, count);
      },
    });
    this.sessionsEnded = new Counter({
      name: 'clinic_hub_sessions_ended_total',
      help: 'Sockets this node disconnected because their session was over (hub:session-ended), by code: AUTH_EXPIRED, AUTH_REVOKED',
      labelNames: ['code'],
      registers: [this.registry],
    });
    this.eventsTotal = new Counter({
      name: 'clinic_hub_events_total',
      help: 'Queue events fanned out to clients by this node, by type',
      labelNames: ['type'],
      registers: [this.registry],
    });
    new Gauge({
      name: 'clinic_hub_events_per_second',
      help: `Queue events fanned out per second by this node, averaged over the last ${WINDOW_SECONDS} s`,
      registers: [this.registry],
      collect() {
        self.roll();
        this.set(self.perSecond.reduce((a, b) => a + b, 0) / WINDOW_SECONDS);
      },
    });
    this.eventLatency = new Histogram({
      name: 'clinic_hub_event_latency_seconds',
      help: 'From the queue change committed in Redis to its emission to clients on this node',
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2],
      registers: [this.registry],
    });
    this.actionDuration = new Histogram({
      name: 'clinic_hub_action_duration_seconds',
      help: 'Server-side time to handle a client action (validation, Redis, ack)',
      labelNames: ['action', 'outcome'],
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1],
      registers: [this.registry],
    });
    this.errorsTotal = new Counter({
      name: 'clinic_hub_errors_total',
      help: 'Error acks sent to clients, by code',
      labelNames: ['code'],
      registers: [this.registry],
    });
    this.fanoutDuplicatesDropped = new Counter({
      name: 'clinic_hub_fanout_duplicates_dropped_total',
      help: 'Queue events this node had emitted already (read back by a catch-up after a Redis outage, then heard live) and did not emit again',
      registers: [this.registry],
    });
    this.chatMessagesTotal = new Counter({
      name: 'clinic_hub_chat_messages_total',
      help: 'Chat messages fanned out to joined sockets by this node',
      registers: [this.registry],
    });
    this.chatDeliveryLatency = new Histogram({
      name: 'clinic_hub_chat_delivery_latency_seconds',
      help: 'From the chat message committed in Redis to its emission to clients on this node',
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2],
      registers: [this.registry],
    });
    new Gauge({
      name: 'clinic_hub_ready',
      help: '1 while this node takes new clients (what /readyz says), 0 while it drains or cannot reach Redis',
      registers: [this.registry],
      collect() {
        this.set(self.node.ready() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'clinic_hub_actions_in_flight',
      help: 'Client actions this node has started and not yet acknowledged',
      registers: [this.registry],
      collect() {
        this.set(self.node.actionsInFlight());
      },
    });
    this.replicaAck = new Histogram({
      name: 'clinic_hub_redis_replica_ack_seconds',
      help: 'Waiting for replicas to hold a queue change or a chat message, thread or membership change before acknowledging it (HUB_REDIS_ACK_REPLICAS), by outcome: confirmed, or timeout (answered STORE_UNAVAILABLE)',
      labelNames: ['outcome'],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2],
      registers: [this.registry],
    });
    new Gauge({
      name: 'clinic_hub_redis_master',
      help: '1 for the Redis master this node writes to (address label: host:port; with Sentinel it changes on failover; on a Redis Cluster one series per shard)',
      labelNames: ['address'],
      registers: [this.registry],
      async collect() {
        const replication = await self.replication();
        this.reset();
        if (replication?.role !== 'master') return;
        const masters = replication.shards?.map((s) => s.master) ?? (replication.address ? [replication.address] : []);
        for (const address of masters) this.set({ address }, 1);
      },
    });
    new Gauge({
      name: 'clinic_hub_redis_replicas_online',
      help: "Replicas in sync with the Redis master (INFO replication, state=online); -1 when Redis did not answer",
      registers: [this.registry],
      async collect() {
        const replication = await self.replication();
        this.set(replication ? replication.replicas.filter((r) => r.state === 'online').length : -1);
      },
    });
    new Gauge({
      name: 'clinic_hub_redis_replication_lag_bytes',
      help: 'How far the furthest-behind replica is behind the master, in bytes of the replication stream',
      registers: [this.registry],
      async collect() {
        const replication = await self.replication();
        this.set(Math.max(0, ...(replication?.replicas ?? []).map((r) => r.lagBytes)));
      },
    });
    // process_* and nodejs_* (CPU, memory, event loop lag, GC), with the node label like the rest.
    collectProcessMetrics(this.registry);
  }

  /** Where clinic_hub_ready, clinic_hub_actions_in_flight and clinic_hub_connected_clients are read from. */
  watchNode(node: NodeWatch): void {
    this.node = node;
  }

  /** Where the clinic_hub_redis_* gauges read the master and its replicas from. */
  watchRedis(replication: () => Promise<RedisReplication | null>): void {
    this.replication = replication;
  }

  eventFannedOut(type: string, committedAt: number): void {
    this.eventsTotal.inc({ type });
    this.eventLatency.observe(Math.max(0, Date.now() - committedAt) / 1000);
    this.roll();
    this.perSecond[this.currentSecond % WINDOW_SECONDS]! += 1;
  }

  chatMessageFannedOut(committedAt: number): void {
    this.chatMessagesTotal.inc();
    this.chatDeliveryLatency.observe(Math.max(0, Date.now() - committedAt) / 1000);
  }

  private roll(): void {
    const now = Math.floor(Date.now() / 1000);
    for (let s = this.currentSecond + 1; s <= now && s <= this.currentSecond + WINDOW_SECONDS; s++) {
      this.perSecond[s % WINDOW_SECONDS] = 0;
    }
    this.currentSecond = Math.max(this.currentSecond, now);
  }
}
