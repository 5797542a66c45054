import { withSecretFiles } from '../config/secret-files.js';

/**
 * Which Redis a service uses, from one of three ways to name it (README,
 * "Scaling"):
 * - `REDIS_URL`: one Redis (`redis://[:password@]host:port[/db]`, `rediss://` for TLS);
 * - `REDIS_SENTINELS` (`host:port,host:port,…`) and `REDIS_SENTINEL_NAME`:
 *   the master the sentinels follow, found again after a failover;
 * - `REDIS_CLUSTER_NODES` (`host:port,…`): a Redis Cluster, any of its nodes.
 * `REDIS_PASSWORD` (the data nodes') and `REDIS_SENTINEL_PASSWORD` (the
 * sentinels' own, if they have one) go with the last two, as do their
 * `_FILE` twins; `REDIS_URL` carries its password itself (or `REDIS_URL_FILE`).
 */
export type RedisTarget =
  | { mode: 'single'; url: string }
  | {
      mode: 'sentinel';
      sentinels: RedisNodeAddress[];
      name: string;
      username?: string;
      password?: string;
      sentinelPassword?: string;
    }
  | { mode: 'cluster'; nodes: RedisNodeAddress[]; username?: string; password?: string };

export interface RedisNodeAddress {
  host: string;
  port: number;
}

/** The codes of a Redis configuration problem (docs: README, "Scaling"). */
export type RedisConfigCode =
  | 'REDIS_CONFIG_MISSING'
  | 'REDIS_CONFIG_CONFLICT'
  | 'REDIS_URL_INVALID'
  | 'REDIS_SENTINELS_INVALID'
  | 'REDIS_SENTINEL_NAME_MISSING'
  | 'REDIS_CLUSTER_NODES_INVALID'
  | 'REDIS_PASSWORD_UNUSED'
  | 'REDIS_CLUSTER_UNSUPPORTED';

export interface RedisConfigProblem {
  variable: string;
  code: RedisConfigCode;
  message: string;
}

/** Every variable the Redis connection reads, `_FILE` twins included: deployment files are checked against it. */
export const REDIS_ENVIRONMENT_VARIABLES = [
  'REDIS_URL',
  'REDIS_URL_FILE',
  'REDIS_SENTINELS',
  'REDIS_SENTINEL_NAME',
  'REDIS_CLUSTER_NODES',
  'REDIS_USERNAME',
  'REDIS_PASSWORD',
  'REDIS_PASSWORD_FILE',
  'REDIS_SENTINEL_PASSWORD',
  'REDIS_SENTINEL_PASSWORD_FILE',
] as const;

/** Read from NAME or NAME_FILE (withSecretFiles); never echoed in a configuration error. */
export const REDIS_SECRET_VARIABLES = ['REDIS_URL', 'REDIS_PASSWORD', 'REDIS_SENTINEL_PASSWORD'] as const;

const set = (value: string | undefined): value is string => value !== undefined && value.trim() !== '';

/**
 * The Redis target an environment names, or every problem with it (each
 * naming its variable, with a code). `env` has its `_FILE` secrets read
 * already (services read them with their own secrets); a bare environment is
 * read here when `readSecretFiles` is set.
 */
export function readRedisTarget(
  rawEnv: NodeJS.ProcessEnv,
  options: { readSecretFiles?: boolean } = {},
): { ok: true; target: RedisTarget } | { ok: false; problems: RedisConfigProblem[] } {
  const env = options.readSecretFiles ? withSecretFiles(rawEnv, REDIS_SECRET_VARIABLES, 'Redis configuration') : rawEnv;
  const problems: RedisConfigProblem[] = [];
  const fail = (variable: string, code: RedisConfigCode, message: string) => {
    problems.push({ variable, code, message });
    return { ok: false as const, problems };
  };
  const modes = (['REDIS_URL', 'REDIS_SENTINELS', 'REDIS_CLUSTER_NODES'] as const).filter((name) => set(env[name]));
  if (modes.length === 0) {
    return fail(
      'REDIS_URL',
      'REDIS_CONFIG_MISSING',
      'required: one Redis (REDIS_URL=redis://host:6379), Sentinel (REDIS_SENTINELS=host:26379,… and REDIS_SENTINEL_NAME) or Cluster (REDIS_CLUSTER_NODES=host:7000,…)',
    );
  }
  if (modes.length > 1) return fail(modes.join(' / '), 'REDIS_CONFIG_CONFLICT', 'set only one of REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES');
  const username = set(env.REDIS_USERNAME) ? env.REDIS_USERNAME.trim() : undefined;
  const password = set(env.REDIS_PASSWORD) ? env.REDIS_PASSWORD : undefined;
  const sentinelPassword = set(env.REDIS_SENTINEL_PASSWORD) ? env.REDIS_SENTINEL_PASSWORD : undefined;
  const mode = modes[0]!;

  if (mode === 'REDIS_URL') {
    const url = env.REDIS_URL!.trim();
    if (!/^rediss?:\/\/[^/]/.test(url)) {
      // The value may hold a password (user:password@host): shown only when it has none.
      const shown = url.includes('@') ? '' : ` (got "${url}")`;
      return fail('REDIS_URL', 'REDIS_URL_INVALID', `must start with redis:// or rediss:// and name a host${shown}`);
    }
    for (const name of ['REDIS_USERNAME', 'REDIS_PASSWORD', 'REDIS_SENTINEL_PASSWORD', 'REDIS_SENTINEL_NAME'] as const) {
      if (set(env[name])) fail(name, 'REDIS_PASSWORD_UNUSED', 'only read with REDIS_SENTINELS or REDIS_CLUSTER_NODES; with REDIS_URL put it in the URL (redis://user:password@host:6379)');
    }
    return problems.length > 0 ? { ok: false, problems } : { ok: true, target: { mode: 'single', url } };
  }

  if (mode === 'REDIS_SENTINELS') {
    const sentinels = parseAddresses(env.REDIS_SENTINELS!);
    if (!sentinels) fail('REDIS_SENTINELS', 'REDIS_SENTINELS_INVALID', 'a comma-separated list of host:port (e.g. redis-sentinel-1:26379,redis-sentinel-2:26379,redis-sentinel-3:26379)');
    const name = env.REDIS_SENTINEL_NAME?.trim();
    if (!name || !/^[A-Za-z0-9_.-]{1,64}$/.test(name)) {
      fail('REDIS_SENTINEL_NAME', 'REDIS_SENTINEL_NAME_MISSING', 'required with REDIS_SENTINELS: the master name the sentinels monitor (1–64 letters, digits, ".", "_" or "-")');
    }
    if (problems.length > 0 || !sentinels || !name) return { ok: false, problems };
    return { ok: true, target: { mode: 'sentinel', sentinels, name, ...(username && { username }), ...(password && { password }), ...(sentinelPassword && { sentinelPassword }) } };
  }

  const nodes = parseAddresses(env.REDIS_CLUSTER_NODES!);
  if (!nodes) fail('REDIS_CLUSTER_NODES', 'REDIS_CLUSTER_NODES_INVALID', 'a comma-separated list of host:port of cluster nodes (e.g. redis-1:7000,redis-2:7000,redis-3:7000)');
  for (const name of ['REDIS_SENTINEL_PASSWORD', 'REDIS_SENTINEL_NAME'] as const) {
    if (set(env[name])) fail(name, 'REDIS_PASSWORD_UNUSED', 'only read with REDIS_SENTINELS');
  }
  if (problems.length > 0 || !nodes) return { ok: false, problems };
  return { ok: true, target: { mode: 'cluster', nodes, ...(username && { username }), ...(password && { password }) } };
}

/**
 * What a service's configuration check calls: the target, or the lines its
 * ConfigError lists. Redis Cluster is refused (REDIS_CLUSTER_UNSUPPORTED)
 * unless the service `acceptsCluster`: one whose every part opens its
 * connections with connectRedisClient and has been run on a cluster (the
 * hub, the notification worker, the media-server and the AI workers: every
 * service today; README, "Scaling").
 */
export function redisTargetForService(
  env: NodeJS.ProcessEnv,
  options: { acceptsCluster?: boolean } = {},
): { target: RedisTarget; lines: [] } | { target: null; lines: string[] } {
  const read = readRedisTarget(env);
  if (!read.ok) return { target: null, lines: describeRedisProblems(read.problems) };
  if (read.target.mode === 'cluster' && !options.acceptsCluster) {
    return {
      target: null,
      lines: describeRedisProblems([
        {
          variable: 'REDIS_CLUSTER_NODES',
          code: 'REDIS_CLUSTER_UNSUPPORTED',
          message: 'this service does not run on a Redis Cluster yet (README, "Scaling" says which do); use REDIS_SENTINELS for failover or REDIS_URL',
        },
      ]),
    };
  }
  return { target: read.target, lines: [] };
}

/** One line per problem, as the services' configuration errors list them. */
export function describeRedisProblems(problems: readonly RedisConfigProblem[]): string[] {
  return problems.map((p) => `  ${p.variable}: ${p.message} [${p.code}]`);
}

function parseAddresses(value: string): RedisNodeAddress[] | null {
  const parts = value.split(',').map((part) => part.trim()).filter((part) => part !== '');
  if (parts.length === 0) return null;
  const addresses: RedisNodeAddress[] = [];
  for (const part of parts) {
    const match = /^(\[[0-9A-Fa-f:]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$/.exec(part);
    const port = Number(match?.[2]);
    if (!match || !(port >= 1 && port <= 65535)) return null;
    addresses.push({ host: match[1]!.replace(/^\[|\]$/g, ''), port });
  }
  return addresses;
}

/** How a target reads in logs and status: never a password. */
export function describeRedisTarget(target: RedisTarget): string {
  if (target.mode === 'single') {
    try {
      const url = new URL(target.url);
      return `${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname}`;
    } catch {
      return 'redis (unparsable URL)';
    }
  }
  if (target.mode === 'sentinel') return `sentinel ${target.name} via ${target.sentinels.map((s) => `${s.host}:${s.port}`).join(',')}`;
  return `cluster via ${target.nodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
}
