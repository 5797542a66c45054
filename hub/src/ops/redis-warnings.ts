import { REDIS_CLUSTER_SLOTS, slotRangesText, type RedisShardStatus } from '@clinic-hub/protocol';

/**
 * What the operator of a Redis Cluster must see to, one sentence each: a
 * shard whose master has failed, a shard with no replica in sync (the hub's
 * replica waits there time out), hash slots that no master serves.
 */
export function clusterWarnings(shards: readonly RedisShardStatus[]): string[] {
  const warnings: string[] = [];
  for (const shard of shards) {
    const name = `shard ${shard.master} (slots ${slotRangesText(shard.slots)})`;
    if (!shard.masterUp) warnings.push(`${name}: its master has failed; its slots are not served until a replica takes over`);
    else if (!shard.replicas.some((r) => r.inSync))
      warnings.push(`${name}: no replica in sync; with HUB_REDIS_ACK_REPLICAS=1 its clinics' actions answer STORE_UNAVAILABLE`);
  }
  const served = shards.reduce((n, s) => n + (s.masterUp ? s.slotCount : 0), 0);
  if (served < REDIS_CLUSTER_SLOTS) warnings.push(`${served} of ${REDIS_CLUSTER_SLOTS} hash slots have a master up: commands on the others fail (CLUSTERDOWN)`);
  return warnings;
}
