import type { RedisClient } from '@clinic-hub/platform/redis';
import { parseInfo, readReplication, type RedisTarget } from '@clinic-hub/platform/redis';
import type { ClinicQueueSummary, OpsStatus } from '@clinic-hub/protocol';
import type { ClinicRegistry } from '../clinics/clinic-registry.js';
import { consultIndexKeys } from '../consult/consult-keys.js';
import { listMediaNodes } from '../consult/media-nodes.js';
import { clinicKeys } from '../queue/index.js';
import { listNodes } from './node-registry.js';
import { clusterWarnings } from './redis-warnings.js';

/** What `clinic status` shows: hub nodes, Redis, and each clinic's queue in numbers (no ticket details). */
export async function opsStatus(redis: RedisClient, clinics: ClinicRegistry, clinicIds: string[], mode: RedisTarget['mode'] = 'single'): Promise<OpsStatus> {
  let info: Record<string, string> = {};
  let up = true;
  try {
    info = parseInfo(await redis.info());
  } catch {
    up = false;
  }
  if (!up) return { nodes: [], redis: { up }, clinics: [], mediaNodes: [] };
  const [nodes, replication] = await Promise.all([listNodes(redis), readReplication(redis)]);
  const summaries: ClinicQueueSummary[] = [];
  for (const id of clinicIds) {
    const clinic = clinics.get(id);
    if (!clinic) continue;
    const keys = clinicKeys(id);
    const multi = redis.multi().get(keys.seq).hvals(keys.tickets).scard(consultIndexKeys(id).open);
    const replies = (await multi.exec()) ?? [];
    const tickets = ((replies[1]?.[1] as string[] | undefined) ?? []).map((raw) => JSON.parse(raw) as { status: string; dept: string });
    const waiting: Record<string, number> = Object.fromEntries(clinic.departments.map((d) => [d.id, 0]));
    for (const t of tickets) if (t.status === 'waiting') waiting[t.dept] = (waiting[t.dept] ?? 0) + 1;
    summaries.push({
      id,
      seq: Number(replies[0]?.[1] ?? 0),
      waiting,
      called: tickets.filter((t) => t.status === 'called').length,
      inConsultation: tickets.filter((t) => t.status === 'in_consultation').length,
      liveRooms: Number(replies[2]?.[1] ?? 0),
    });
  }
  return {
    nodes,
    redis: {
      up,
      version: info.redis_version,
      usedMemoryBytes: Number(info.used_memory),
      aof: info.aof_enabled === '1',
      connectedClients: Number(info.connected_clients),
      mode,
      master: replication.role === 'master' ? replication.address : null,
      replicas: replication.replicas,
      ...(replication.shards && { shards: replication.shards, warnings: clusterWarnings(replication.shards) }),
    },
    clinics: summaries,
    mediaNodes: await listMediaNodes(redis),
  };
}
