import type { Command } from 'commander';
import { connectionOptions, examples, handle, jsonOption, type Runtime } from '../command-kit.js';
import { hubRequest } from '../hub-http.js';
import { REDIS_CLUSTER_SLOTS, slotRangesText, type OpsStatus, type RedisReplicaStatus, type RedisShardStatus } from '@clinic-hub/protocol';
import { ago, bytes, duration, table, type Output } from '../output.js';
import { runLiveView } from '../views/run-live-view.js';

export type StatusReport = OpsStatus & { clientsByRole: Record<string, number>; checkedAt: number };

export async function fetchStatus(connection: Parameters<typeof hubRequest>[0]): Promise<StatusReport> {
  const status = await hubRequest<OpsStatus>(connection, '/api/ops/status');
  const clientsByRole: Record<string, number> = {};
  for (const node of status.nodes) {
    if (!node.up) continue;
    for (const [role, count] of Object.entries(node.clients)) clientsByRole[role] = (clientsByRole[role] ?? 0) + (count ?? 0);
  }
  return { ...status, clientsByRole, checkedAt: Date.now() };
}

export const rolesSummary = (clients: Partial<Record<string, number>>) =>
  Object.entries(clients)
    .filter(([, n]) => (n ?? 0) > 0)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([role, n]) => `${role} ${n}`)
    .join(', ') || 'none';

/** A hub older than `inSync` counted a replica in sync by its state alone. */
const inSync = (replica: RedisReplicaStatus) => replica.inSync ?? replica.state === 'online';

export function redisSummary(redis: OpsStatus['redis']): string {
  if (!redis.up) return 'DOWN';
  const parts = [`up`, `version ${redis.version ?? '?'}`, `${bytes(redis.usedMemoryBytes)} used`, `AOF ${redis.aof ? 'on' : 'off'}`, `${redis.connectedClients ?? '?'} connections`];
  if (redis.mode && redis.mode !== 'single') parts.push(redis.mode);
  if (redis.shards) {
    const served = redis.shards.reduce((n, s) => n + (s.masterUp ? s.slotCount : 0), 0);
    parts.push(`${redis.shards.length} shards`, `${redis.shards.filter((s) => s.replicas.some(inSync)).length}/${redis.shards.length} with a replica in sync`, `${served}/${REDIS_CLUSTER_SLOTS} slots served`);
    return parts.join(' · ');
  }
  if (redis.master) parts.push(`master ${redis.master}`);
  if (redis.replicas) {
    const lag = Math.max(0, ...redis.replicas.map((r) => r.lagBytes));
    parts.push(redis.replicas.length === 0 ? 'no replica' : `${redis.replicas.filter(inSync).length}/${redis.replicas.length} replicas in sync, lag ${bytes(lag)} (${Math.max(0, ...redis.replicas.map((r) => r.lagSeconds ?? 0))} s)`);
  }
  return parts.join(' · ');
}

const replicaLag = (replica: RedisReplicaStatus) => `${bytes(replica.lagBytes)}${replica.lagSeconds === null ? '' : ` (${replica.lagSeconds} s)`}`;

/** A Redis Cluster, shard by shard: one row per replica, the master and its slots on the shard's first row. */
function printShards(out: Output, shards: RedisShardStatus[], warnings: string[]): void {
  const s = out.style;
  const rows = shards.flatMap((shard) => {
    const master = shard.masterUp ? shard.master : `${shard.master} ${s.red('FAILED')}`;
    const slots = `${slotRangesText(shard.slots)} (${shard.slotCount})`;
    if (shard.replicas.length === 0) return [[master, slots, s.red('none'), '', '', '']];
    return shard.replicas.map((r, i) => [
      i === 0 ? master : '',
      i === 0 ? slots : '',
      r.address,
      r.state,
      inSync(r) ? s.green('yes') : s.red('no'),
      replicaLag(r),
    ]);
  });
  for (const line of table(['MASTER', 'SLOTS', 'REPLICA', 'STATE', 'IN SYNC', 'LAG'], rows, { headerStyle: s.dim })) out.line(`  ${line}`);
  for (const warning of warnings) out.line(`  ${s.red(`warning: ${warning}`)}`);
}

export function printStatus(out: Output, status: StatusReport): void {
  const s = out.style;
  const now = status.checkedAt;
  out.line(s.bold('Hub nodes'));
  if (status.nodes.length === 0) out.line(status.redis.up ? '  no node has reported yet' : '  unknown: Redis is down');
  else
    for (const line of table(
      ['NODE', 'STATE', 'SERVER', 'URL', 'CLIENTS', 'RSS', 'UP FOR', 'LAST SEEN'],
      status.nodes.map((n) => [
        n.nodeId,
        n.up ? s.green('up') : s.red('down'),
        n.server,
        n.url,
        rolesSummary(n.clients),
        bytes(n.rssBytes),
        duration(Math.round((n.lastSeen - n.startedAt) / 1000)),
        ago(n.lastSeen, now),
      ]),
      { headerStyle: s.dim },
    ))
      out.line(`  ${line}`);
  out.line();
  out.line(`${s.bold('Clients by role')} (nodes that are up): ${rolesSummary(status.clientsByRole)}`);
  out.line(`${s.bold('Redis')}: ${status.redis.up ? redisSummary(status.redis) : s.red(redisSummary(status.redis))}`);
  if (status.redis.up && status.redis.shards) printShards(out, status.redis.shards, status.redis.warnings ?? []);
  out.line();
  out.line(s.bold('Queues'));
  if (status.clinics.length === 0) out.line('  none visible');
  else
    for (const line of table(
      ['CLINIC', 'SEQ', 'WAITING', 'CALLED', 'IN CONSULT', 'VIDEO ROOMS'],
      status.clinics.map((c) => [
        c.id,
        String(c.seq),
        Object.entries(c.waiting)
          .map(([dept, n]) => `${dept} ${n}`)
          .join(' · '),
        String(c.called),
        String(c.inConsultation),
        String(c.liveRooms),
      ]),
      { headerStyle: s.dim },
    ))
      out.line(`  ${line}`);
}

export function registerStatusCommand(program: Command, runtime: Runtime): void {
  const status = connectionOptions(program.command('status'))
    .summary('hub nodes, clients by role, Redis, queue numbers')
    .description('hub nodes (up/down, clients by role), Redis (version, memory, AOF, master and replicas; on a Redis Cluster each shard) and every visible clinic’s queue numbers')
    .option('-w, --watch', 'live view: queue numbers follow the event stream, nodes and Redis refresh every few seconds')
    .option('--interval <seconds>', 'with --watch: seconds between refreshes of nodes and Redis', '5')
    .addOption(jsonOption());
  examples(status, ['clinic status', 'clinic status --json | jq ".nodes[] | select(.up | not)"', 'clinic status --watch']);
  handle<{ watch?: boolean; interval: string }>(status, runtime, async ({ out, connection }, options) => {
    if (options.watch) {
      await runLiveView(out, 'status', { connection: connection(), intervalSeconds: Math.max(1, Number(options.interval) || 5) });
      return;
    }
    const report = await fetchStatus(connection());
    if (out.json) out.data(report);
    else printStatus(out, report);
  });
}
