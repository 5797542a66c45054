import { hashSlot, type RedisTarget } from '@clinic-hub/platform/redis';
import { clusterLagSkipReason, startRedisCluster } from './redis-cluster.js';
import { startSentinelGroup } from './redis-sentinel.js';

/**
 * A Redis that fails over, Sentinel or Cluster, for a test that runs one body
 * against both (`describe.each(FAILOVER_MODES)`): the environment and target
 * the services and the test connect with, and a master to kill.
 */
export interface FailoverRedis {
  mode: 'sentinel' | 'cluster';
  /** REDIS_SENTINELS … or REDIS_CLUSTER_NODES, for a service's environment. */
  env: Record<string, string>;
  target: RedisTarget;
  /**
   * SIGKILL the master that holds `key` (on Sentinel the one master), the
   * replica lagging `lagMs` first, and wait until its replica is promoted and
   * the killed node is back as its replica, in sync. On a cluster that cannot
   * lag a replica here (`clusterLagSkipReason()`) it warns and kills without
   * the lag, `lagged` false: nothing is lost then, so that run does not show
   * the replica wait at work. `onLagging` is called either way.
   */
  killMasterOf(key: string, options: { lagMs: number; onLagging?: () => void }): Promise<{ killed: number; promoted: number; failoverMs: number; killedAt: number; lagged: boolean }>;
  cleanup(): Promise<void>;
}

export interface FailoverMode {
  name: 'Sentinel' | 'Cluster';
  /**
   * `failoverAfterMs`: how long a silent master goes before its replica is
   * promoted (the sentinels' down-after-milliseconds, the cluster's
   * cluster-node-timeout); the test-kit's default when absent.
   */
  start(options?: { failoverAfterMs?: number }): Promise<FailoverRedis>;
}

export const FAILOVER_MODES: readonly FailoverMode[] = [
  {
    name: 'Sentinel',
    async start(options = {}) {
      const group = await startSentinelGroup(options.failoverAfterMs === undefined ? {} : { downAfterMs: options.failoverAfterMs });
      return {
        mode: 'sentinel',
        env: group.env,
        target: group.target,
        async killMasterOf(_key, { lagMs, onLagging }) {
          return { ...(await group.killMaster({ lagMs, ...(onLagging && { onLagging }) })), lagged: true };
        },
        cleanup: () => group.cleanup(),
      };
    },
  },
  {
    name: 'Cluster',
    async start(options = {}) {
      const cluster = await startRedisCluster(options.failoverAfterMs === undefined ? {} : { nodeTimeoutMs: options.failoverAfterMs });
      return {
        mode: 'cluster',
        env: cluster.env,
        target: cluster.target,
        async killMasterOf(key, { lagMs, onLagging }) {
          const master = await cluster.masterOfSlot(hashSlot(key));
          const skip = clusterLagSkipReason();
          if (skip) {
            console.warn(`the master of ${key}'s shard is killed without its replica lagging (${skip}): nothing is lost either way, so this run does not show the replica wait at work`);
            onLagging?.();
            return { ...(await cluster.killMaster(master.port)), lagged: false };
          }
          return { ...(await cluster.killMaster(master.port, { lagMs, ...(onLagging && { onLagging }) })), lagged: true };
        },
        cleanup: () => cluster.cleanup(),
      };
    },
  },
];
