import { describe, expect, it } from 'vitest';
import type { RedisReplicaStatus, RedisShardStatus } from '@clinic-hub/protocol';
import { clusterWarnings } from '../src/ops/redis-warnings.js';

const replica = (inSync: boolean): RedisReplicaStatus => ({ address: '10.0.0.9:6379', state: 'online', lagBytes: 0, lagSeconds: inSync ? 0 : 5, inSync });
const shard = (master: string, slots: [number, number][], replicas: RedisReplicaStatus[], masterUp = true): RedisShardStatus => ({
  master,
  masterUp,
  slots,
  slotCount: slots.reduce((n, [a, b]) => n + b - a + 1, 0),
  replicas,
});

/** The cluster warnings of `clinic status` and /healthz (the real cluster: cli/test/status-cluster.test.ts). */
describe('clusterWarnings', () => {
  it('says nothing when every slot has a master up with a replica in sync', () => {
    expect(clusterWarnings([shard('10.0.0.1:6379', [[0, 8191]], [replica(true)]), shard('10.0.0.2:6379', [[8192, 16383]], [replica(false), replica(true)])])).toEqual([]);
  });

  it('names a shard without a replica in sync, a failed master and the slots no master serves', () => {
    expect(
      clusterWarnings([
        shard('10.0.0.1:6379', [[0, 100], [102, 102]], []),
        shard('10.0.0.2:6379', [[103, 8191]], [replica(false)]),
        shard('10.0.0.3:6379', [[8192, 16383]], [replica(true)], false),
      ]),
    ).toEqual([
      "shard 10.0.0.1:6379 (slots 0-100,102): no replica in sync; with HUB_REDIS_ACK_REPLICAS=1 its clinics' actions answer STORE_UNAVAILABLE",
      "shard 10.0.0.2:6379 (slots 103-8191): no replica in sync; with HUB_REDIS_ACK_REPLICAS=1 its clinics' actions answer STORE_UNAVAILABLE",
      'shard 10.0.0.3:6379 (slots 8192-16383): its master has failed; its slots are not served until a replica takes over',
      '8191 of 16384 hash slots have a master up: commands on the others fail (CLUSTERDOWN)',
    ]);
  });
});
