import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { freePort } from '@clinic-hub/platform/redis-server';
import { startTestRedis } from '@clinic-hub/test-kit/redis';
import { waitFor } from '@clinic-hub/test-kit/wait';
import { HUB_ENVIRONMENT_VARIABLES, loadConfig } from '../src/config.js';
import { NOTIFY_ENVIRONMENT_VARIABLES, loadNotifyConfig } from '../src/notify/notify-config.js';
import { MEDIA_ENVIRONMENT_VARIABLES, loadMediaConfig } from '@clinic-hub/media-server';
import { RECORDING_ENVIRONMENT_VARIABLES, loadRecordingConfig } from '@clinic-hub/recordings';
import { AI_ENVIRONMENT_VARIABLES, loadAiConfig } from '@clinic-hub/ai-workers';
import {
  composeSchemaValidator,
  containerPorts,
  environmentOf,
  interpolate,
  loadCompose,
  loadDockerStages,
  loadHaproxyConfig,
  loadPrometheusTargets,
  mergeCompose,
  repoPath,
  type ComposeService,
} from './support/deploy-files.js';

/**
 * docker-compose.yml, the Dockerfile and the load balancer's config, checked
 * without Docker (it cannot run here): against the Compose specification,
 * and against what the code reads — every variable set is one the hub or the
 * worker knows and accepts, every port agrees from service to load balancer
 * to Prometheus, every file a command names exists.
 */
const compose = loadCompose();
const stages = loadDockerStages();
const haproxy = loadHaproxyConfig();
const services = Object.entries(compose.services);
const hubs = services.filter(([, s]) => s.build?.target === 'hub');
const workers = services.filter(([, s]) => s.build?.target === 'notify-worker');
const mediaNodes = services.filter(([, s]) => s.build?.target === 'media-server');
const aiWorkers = services.filter(([, s]) => s.build?.target === 'ai-worker');

/** Secrets the code must never get from this file, only as *_FILE. */
const SECRET_NAMES = ['HUB_TOKEN_SECRET', 'HUB_ATTACHMENT_KEY', 'MEDIA_TOKEN_SECRET', 'RECORDING_KEY', 'DEEPGRAM_API_KEY', 'NOTIFY_SMTP_URL', 'NOTIFY_LINE_CHANNEL_ACCESS_TOKEN', 'NOTIFY_SMS_AUTH_TOKEN'];

const secretsDir = mkdtempSync(join(tmpdir(), 'clinic-hub-compose-secrets-'));
afterAll(() => rmSync(secretsDir, { recursive: true, force: true }));

/** The environment a container of this service gets: its image stage's ENV, then compose's, with /run/secrets files made up and /app mapped to the repository. */
function containerEnvironment(service: ComposeService): Record<string, string> {
  const stage = stages.get(service.build!.target!)!;
  const env: Record<string, string> = { ...stage.env, ...environmentOf(service) };
  for (const [name, value] of Object.entries(env)) {
    if (value.startsWith('/run/secrets/')) {
      const file = join(secretsDir, value.slice('/run/secrets/'.length));
      const isKey = name === 'HUB_ATTACHMENT_KEY_FILE' || name === 'RECORDING_KEY_FILE';
      writeFileSync(file, isKey ? `${Buffer.alloc(32, 1).toString('base64')}\n` : 'a-secret-made-up-for-this-test-0123456789-abcdef\n');
      env[name] = file;
    }
    if (value.startsWith('/app/')) env[name] = repoPath(value.slice('/app/'.length));
  }
  return env;
}

describe('docker-compose.yml', () => {
  it('is valid by the Compose specification’s JSON schema', () => {
    const validate = composeSchemaValidator();
    expect(validate(compose)).toEqual({ valid: true, errors: [] });
    // The validator does catch mistakes.
    const broken = loadCompose();
    (broken.services['hub-1'] as Record<string, unknown>).imag = 'typo';
    (broken.services['hub-2'] as Record<string, unknown>).stop_grace_period = 'half a minute';
    const result = validate(broken);
    expect(result.valid).toBe(false);
    expect(result.errors.join('\n')).toMatch(/additional/i);
    expect(result.errors.join('\n')).toMatch(/stop_grace_period/);
  });

  it('runs Redis 7 with AOF on a named volume, and everything else after it is healthy', () => {
    const redis = compose.services.redis!;
    expect(redis.image).toMatch(/^redis:7/);
    const command = redis.command as string[];
    expect(command.slice(command.indexOf('--appendonly'), command.indexOf('--appendonly') + 2)).toEqual(['--appendonly', 'yes']);
    expect(['always', 'everysec']).toContain(command[command.indexOf('--appendfsync') + 1]);
    const [volume] = redis.volumes![0]!.split(':');
    expect(Object.keys(compose.volumes ?? {})).toContain(volume);
    expect(redis.healthcheck).toBeDefined();
    for (const [, service] of [...hubs, ...workers]) expect(service.depends_on).toMatchObject({ redis: { condition: 'service_healthy' } });
  });

  it('has two hub nodes with their own ids and the same secrets, from files', () => {
    expect(hubs.map(([name]) => name)).toEqual(['hub-1', 'hub-2']);
    const ids = hubs.map(([, s]) => environmentOf(s).HUB_NODE_ID);
    expect(ids).toEqual(['hub-1', 'hub-2']);
    const [first, second] = hubs.map(([, s]) => environmentOf(s));
    expect({ ...first, HUB_NODE_ID: '' }).toEqual({ ...second, HUB_NODE_ID: '' });
    for (const [name, service] of services) {
      const env = service.environment ?? {};
      for (const secret of SECRET_NAMES) expect(Object.keys(env), `${name} sets ${secret} in the file`).not.toContain(secret);
      for (const [variable, value] of Object.entries(environmentOf(service))) {
        if (!variable.endsWith('_FILE')) continue;
        const secret = value.replace('/run/secrets/', '');
        expect(service.secrets, `${name}: ${variable} needs the secret ${secret}`).toContain(secret);
        expect(compose.secrets?.[secret]?.file, `secret ${secret} comes from a file`).toMatch(/^\.\/deploy\/secrets\//);
      }
    }
  });

  it('sets on each hub only variables the hub reads, and values its config accepts', () => {
    for (const [name, service] of hubs) {
      const unknown = Object.keys(service.environment ?? {}).filter((v) => !HUB_ENVIRONMENT_VARIABLES.includes(v));
      expect(unknown, `${name}: variables the hub does not read`).toEqual([]);
      const config = loadConfig(containerEnvironment(service));
      expect(config.nodeId).toBe(name);
      expect(config.host).toBe('0.0.0.0');
      expect(config.drain.graceMs + config.drain.timeoutMs).toBeLessThan(parseSeconds(service.stop_grace_period!) * 1000);
    }
  });

  it('sets on the notification worker only variables it reads, and starts its metrics endpoint where it is exposed', () => {
    expect(workers.map(([name]) => name)).toEqual(['notify-worker']);
    for (const [name, service] of workers) {
      const unknown = Object.keys(service.environment ?? {}).filter((v) => !NOTIFY_ENVIRONMENT_VARIABLES.includes(v));
      expect(unknown, `${name}: variables the worker does not read`).toEqual([]);
      const config = loadNotifyConfig(containerEnvironment(service));
      expect(config.metrics).not.toBeNull();
      expect(containerPorts(service)).toContain(config.metrics!.port);
    }
  });

  it('sets on each media-server only variables it reads, publishes its signalling port and its whole UDP range, and drains within the stop grace period', () => {
    expect(mediaNodes.map(([name]) => name)).toEqual(['media-1']);
    for (const [name, service] of mediaNodes) {
      const known = [...MEDIA_ENVIRONMENT_VARIABLES, ...RECORDING_ENVIRONMENT_VARIABLES];
      expect(Object.keys(service.environment ?? {}).filter((v) => !known.includes(v)), `${name}: variables it does not read`).toEqual([]);
      const env = containerEnvironment(service);
      const config = loadMediaConfig(env);
      expect(config.nodeId).toBe(name);
      expect(containerPorts(service)).toContain(config.port);
      const [min, max] = config.udpPortRange;
      expect(service.ports).toContain(`${min}-${max}:${min}-${max}/udp`);
      expect(stages.get('media-server')!.expose).toEqual(expect.arrayContaining([config.port, min]));
      expect(config.drainGraceMs).toBeLessThan(parseSeconds(service.stop_grace_period!) * 1000);
      expect(loadRecordingConfig(env).key).not.toBeNull();
    }
  });

  it('shares the recordings volume: written by media-servers, read by the hubs and the AI workers', () => {
    for (const [name, service] of mediaNodes) expect(service.volumes, name).toContain('recordings:/recordings');
    for (const [name, service] of [...hubs, ...aiWorkers]) expect(service.volumes, name).toContain('recordings:/recordings:ro');
    for (const [, service] of [...hubs, ...mediaNodes, ...aiWorkers]) expect(loadRecordingConfig(containerEnvironment(service)).dir).toBe('/recordings');
  });

  it('sets on the AI worker only variables it reads, with models from its volume and metrics where they are exposed', () => {
    expect(aiWorkers.map(([name]) => name)).toEqual(['ai-worker']);
    for (const [name, service] of aiWorkers) {
      const known = [...AI_ENVIRONMENT_VARIABLES, ...RECORDING_ENVIRONMENT_VARIABLES];
      expect(Object.keys(service.environment ?? {}).filter((v) => !known.includes(v)), `${name}: variables it does not read`).toEqual([]);
      const config = loadAiConfig(containerEnvironment(service), '/');
      expect(config.models.dir).toBe('/models');
      expect(service.volumes).toContain('models:/models');
      expect(config.metrics).not.toBeNull();
      expect(containerPorts(service)).toContain(config.metrics!.port);
    }
  });

  it('puts each hub’s HUB_PORT in its exposed ports and in the load balancer’s servers, with /readyz as the health check', () => {
    expect(haproxy.servers.map((s) => s.name).sort()).toEqual(hubs.map(([name]) => name).sort());
    for (const [name, service] of hubs) {
      const port = loadConfig(containerEnvironment(service)).port;
      expect(containerPorts(service)).toContain(port);
      expect(haproxy.servers.find((s) => s.name === name)).toMatchObject({ host: name, port });
    }
    expect(haproxy.healthCheckUri).toBe('/readyz');
    const lb = compose.services.lb!;
    expect(lb.image).toMatch(/^haproxy:/);
    expect(lb.volumes).toContain('./deploy/haproxy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro');
    for (const port of containerPorts(lb)) expect(haproxy.bindPorts).toContain(port);
  });

  it('has Prometheus scrape every hub, the worker and the load balancer where they listen', () => {
    const targets = loadPrometheusTargets();
    expect(targets.hub!.sort()).toEqual(hubs.map(([name, s]) => `${name}:${loadConfig(containerEnvironment(s)).port}`).sort());
    expect(targets['notify-worker']).toEqual(workers.map(([name, s]) => `${name}:${loadNotifyConfig(containerEnvironment(s)).metrics!.port}`));
    expect(targets['media-server']).toEqual(mediaNodes.map(([name, s]) => `${name}:${loadMediaConfig(containerEnvironment(s)).port}`));
    expect(targets['ai-worker']).toEqual(aiWorkers.map(([name, s]) => `${name}:${loadAiConfig(containerEnvironment(s), '/').metrics!.port}`));
    const statsPort = haproxy.bindPorts.find((p) => p !== containerPorts(compose.services.lb!)[0]);
    expect(targets.haproxy).toEqual([`lb:${statsPort}`]);
  });

  it('has a bench profile that runs one of the k6 scripts through the load balancer', () => {
    const bench = compose.services.bench!;
    expect(bench.profiles).toEqual(['bench']);
    expect(bench.image).toMatch(/^grafana\/k6:/);
    const [verb, script] = (bench.command as string[]).map((part) => interpolate(part));
    expect(verb).toBe('run');
    expect(script).toMatch(/^load-tests\/k6\/[a-z-]+\.ts$/);
    expect(existsSync(repoPath(script!)), `${script} exists`).toBe(true);
    expect(readdirSync(repoPath('load-tests/k6')).filter((f) => f.endsWith('.ts'))).toContain(script!.split('/').at(-1));
    const env = environmentOf(bench);
    expect(env.HUB_URL).toBe(`http://lb:${containerPorts(compose.services.lb!)[0]}`);
    expect(Object.keys(env)).toEqual(expect.arrayContaining(['STAFF_TOKEN', 'DISPLAY_TOKEN', 'DEPT']));
    // Every setting any k6 script reads (lib/env.ts: requiredEnv, optionalEnv, numberEnv, listEnv) can be given from the shell.
    const k6Dir = repoPath('load-tests/k6');
    const sources = [...readdirSync(k6Dir), ...readdirSync(join(k6Dir, 'lib')).map((f) => `lib/${f}`)].filter((f) => f.endsWith('.ts'));
    const read = new Set(sources.flatMap((f) => [...readFileSync(join(k6Dir, f), 'utf8').matchAll(/\b(?:required|optional|number|list)Env\('([A-Z0-9_]+)'/g)].map((m) => m[1]!)));
    expect(read.size).toBeGreaterThan(10);
    expect([...read].filter((name) => !(name in env)).sort()).toEqual([]);
    // The scripts import the protocol by relative path: both folders are mounted side by side.
    expect(bench.volumes).toEqual(expect.arrayContaining(['./load-tests:/repo/load-tests:ro', './protocol:/repo/protocol:ro']));
    expect(bench.working_dir).toBe('/repo');
  });

  it('mounts files that exist', () => {
    for (const [name, service] of services) {
      for (const volume of service.volumes ?? []) {
        const source = volume.split(':')[0]!;
        if (source.startsWith('./')) expect(existsSync(repoPath(source)), `${name} mounts ${source}`).toBe(true);
      }
    }
  });
});

/** deploy/redis/sentinel.conf's directives: `sentinel monitor NAME HOST PORT QUORUM` as ['monitor', NAME, …]. */
function sentinelDirectives(text: string): Map<string, string[]> {
  const directives = new Map<string, string[]>();
  for (const line of text.split('\n').map((l) => l.trim())) {
    if (!line || line.startsWith('#')) continue;
    const words = line.split(/\s+/);
    if (words[0] === 'sentinel') directives.set(words[1]!, words.slice(2));
    else directives.set(words[0]!, words.slice(1));
  }
  return directives;
}

describe('docker-compose.sentinel.yml (with docker-compose.yml)', () => {
  const override = loadCompose(readFileSync(repoPath('docker-compose.sentinel.yml'), 'utf8'));
  const merged = mergeCompose(loadCompose(), override);
  const conf = readFileSync(repoPath('deploy/redis/sentinel.conf'), 'utf8');
  const directives = sentinelDirectives(conf);
  const [masterName, masterHost, masterPort, quorum] = directives.get('monitor')!;
  const sentinelPort = Number(directives.get('port')![0]);
  const sentinels = Object.entries(merged.services).filter(([name]) => /^sentinel-\d+$/.test(name));
  const redisUsers = Object.entries(merged.services).filter(([, s]) => ['hub', 'notify-worker', 'media-server', 'ai-worker'].includes(s.build?.target ?? ''));

  it('is valid by the Compose specification’s JSON schema, merged onto docker-compose.yml', () => {
    expect(composeSchemaValidator()(merged)).toEqual({ valid: true, errors: [] });
    // It only adds Redis services and changes how services name Redis.
    expect(Object.keys(override.services).filter((name) => !(name in loadCompose().services)).sort()).toEqual(['redis-replica', 'sentinel-1', 'sentinel-2', 'sentinel-3']);
  });

  it('has a primary, a replica of it and three sentinels that monitor it, each announcing its service name', () => {
    expect(masterHost).toBe('redis');
    expect(sentinels.map(([name]) => name)).toEqual(['sentinel-1', 'sentinel-2', 'sentinel-3']);
    expect(Number(quorum)).toBe(2);
    expect(directives.get('resolve-hostnames')).toEqual(['yes']);
    expect(directives.get('announce-hostnames')).toEqual(['yes']);
    const primary = merged.services.redis!.command as string[];
    const replica = merged.services['redis-replica']!.command as string[];
    // The replica: the same durability as the primary, replicating it where the sentinels look for it.
    for (const command of [primary, replica]) {
      expect(command.slice(command.indexOf('--appendonly'), command.indexOf('--appendonly') + 2)).toEqual(['--appendonly', 'yes']);
      expect(command[command.indexOf('--appendfsync') + 1]).toBe('always');
    }
    expect(replica.slice(replica.indexOf('--replicaof') + 1, replica.indexOf('--replicaof') + 3)).toEqual([masterHost, masterPort]);
    expect(primary[primary.indexOf('--replica-announce-ip') + 1]).toBe('redis');
    expect(replica[replica.indexOf('--replica-announce-ip') + 1]).toBe('redis-replica');
    expect(Object.keys(merged.volumes ?? {})).toContain(merged.services['redis-replica']!.volumes![0]!.split(':')[0]);
    for (const [name, service] of sentinels) {
      const script = (service.command as string[]).join(' ');
      expect(script, name).toContain(`echo 'sentinel announce-ip ${name}'`);
      expect(script, name).toContain('exec redis-server /data/sentinel.conf --sentinel');
      expect(service.volumes, name).toContain('./deploy/redis/sentinel.conf:/etc/clinic-hub/sentinel.conf:ro');
      // Its own volume: a sentinel keeps what it learned (the current master, the epoch) across restarts.
      const data = service.volumes!.find((v) => v.endsWith(':/data'))!.split(':')[0]!;
      expect(Object.keys(merged.volumes ?? {}), name).toContain(data);
      expect(containerPorts(service), name).toContain(sentinelPort);
    }
  });

  it('names Redis through the sentinels in every service, and each service reads that as Sentinel', () => {
    expect(redisUsers.map(([name]) => name).sort()).toEqual(['ai-worker', 'hub-1', 'hub-2', 'media-1', 'notify-worker']);
    const expected = { mode: 'sentinel', name: masterName, sentinels: sentinels.map(([name]) => ({ host: name, port: sentinelPort })) };
    for (const [name, service] of redisUsers) {
      const env = containerEnvironment(service);
      expect(env.REDIS_URL, name).toBe('');
      const target = service.build!.target;
      const config =
        target === 'hub' ? loadConfig(env) : target === 'notify-worker' ? loadNotifyConfig(env) : target === 'media-server' ? loadMediaConfig(env) : loadAiConfig(env, '/');
      expect(config.redis, name).toEqual(expected);
      for (const [sentinel] of sentinels) expect(service.depends_on, name).toMatchObject({ [sentinel]: { condition: 'service_healthy' } });
    }
    // Acknowledged changes wait for the replica by default with Sentinel.
    expect(loadConfig(containerEnvironment(merged.services['hub-1']!)).redisAck.replicas).toBe(1);
    expect(loadNotifyConfig(containerEnvironment(merged.services['notify-worker']!)).redisAck.replicas).toBe(1);
  });

  it('runs deploy/redis/sentinel.conf in a real sentinel (the monitored address pointed at a Redis of this test)', { timeout: 30_000 }, async () => {
    const redis = await startTestRedis();
    const dir = mkdtempSync(join(tmpdir(), 'clinic-hub-sentinel-conf-'));
    const port = await freePort();
    const file = join(dir, 'sentinel.conf');
    const local = conf
      .replace(/^port \d+$/m, `port ${port}`)
      .replace(`sentinel monitor ${masterName} ${masterHost} ${masterPort}`, `sentinel monitor ${masterName} 127.0.0.1 ${redis.port}`);
    expect(local).not.toEqual(conf);
    writeFileSync(file, `${local}sentinel announce-ip 127.0.0.1\nbind 127.0.0.1\n`);
    const child = spawn('redis-server', [file, '--sentinel'], { stdio: 'ignore' });
    const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, retryStrategy: () => 100 });
    client.on('error', () => undefined);
    try {
      await waitFor('the sentinel to answer', () => client.ping().then(() => true, () => false), 10_000);
      const flat = (await client.call('SENTINEL', 'master', masterName!)) as string[];
      const fields = Object.fromEntries(flat.flatMap((v, i) => (i % 2 === 0 ? [[v, flat[i + 1]]] : [])));
      expect(fields).toMatchObject({ name: masterName, port: String(redis.port), quorum: quorum, 'down-after-milliseconds': directives.get('down-after-milliseconds')![1] });
      expect(await client.call('SENTINEL', 'get-master-addr-by-name', masterName!)).toEqual(['127.0.0.1', String(redis.port)]);
    } finally {
      client.disconnect();
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
      await redis.cleanup();
    }
  });
});

describe('Dockerfile', () => {
  it('builds the targets compose uses from node:20-bookworm-slim, running as a non-root user', () => {
    for (const [name, service] of services.filter(([, s]) => s.build)) {
      const stage = stages.get(service.build!.target!);
      expect(stage, `${name}: target ${service.build!.target}`).toBeDefined();
      expect(stage!.user).toBe('node');
      let base = stage!;
      while (stages.has(base.from)) base = stages.get(base.from)!;
      expect(base.from).toBe('${NODE_IMAGE}');
    }
    expect(loadDockerfileArg('NODE_IMAGE')).toBe('node:20-bookworm-slim');
  });

  it('starts files that exist, and checks health on the port its service listens on', () => {
    for (const target of ['hub', 'notify-worker', 'media-server', 'ai-worker']) {
      const stage = stages.get(target)!;
      const files = stage.cmd!.filter((part) => /\.(ts|mjs|js)$/.test(part));
      expect(files.length).toBeGreaterThan(0);
      for (const file of files) expect(existsSync(repoPath(file)), `${target} CMD ${file}`).toBe(true);
      const [node, script, portVariable, path] = stage.healthcheck!;
      expect([node, script]).toEqual(['node', 'deploy/healthcheck.mjs']);
      expect(existsSync(repoPath(script!))).toBe(true);
      expect(path).toBe('/healthz');
      expect(stage.expose).toContain(Number(stage.env[portVariable!]));
    }
  });

  it('has a health check script that passes on 200 and fails on 503 or silence', async () => {
    let status = 200;
    const server = createServer((_req, res) => res.writeHead(status).end('{}'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const check = (env: Record<string, string>) =>
      new Promise<number | null>((resolve) => {
        const child = spawn(process.execPath, ['deploy/healthcheck.mjs', 'HUB_PORT', '/healthz'], {
          cwd: repoPath(),
          env: { PATH: process.env.PATH ?? '', ...env },
          stdio: 'ignore',
        });
        child.on('exit', (code) => resolve(code));
      });
    expect(await check({ HUB_PORT: String(port) })).toBe(0);
    status = 503;
    expect(await check({ HUB_PORT: String(port) })).toBe(1);
    server.close();
    expect(await check({ HUB_PORT: String(port) })).toBe(1);
    expect(await check({})).toBe(1);
  });

  it('copies every workspace (npm ci needs each package.json; the build type-checks them all)', () => {
    const dockerfile = readFileSyncText('Dockerfile');
    const { workspaces } = JSON.parse(readFileSyncText('package.json')) as { workspaces: string[] };
    for (const workspace of workspaces) {
      expect(dockerfile, workspace).toContain(`COPY ${workspace}/package.json ${workspace}/\n`);
      expect(dockerfile, workspace).toContain(`COPY ${workspace} ${workspace}\n`);
    }
  });

  it('leaves dependencies, local data and secrets out of the build context', () => {
    const ignored = readFileSyncText('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    expect(ignored).toEqual(expect.arrayContaining(['**/node_modules', 'var', 'deploy/secrets', '.git']));
  });
});

describe('deploy/haproxy/haproxy.cfg', () => {
  it('is a valid HAProxy configuration', () => {
    const check = spawnSync('haproxy', ['-c', '-f', repoPath('deploy/haproxy/haproxy.cfg')], { encoding: 'utf8' });
    expect(check.error, 'haproxy is installed (.ci/run installs it)').toBeUndefined();
    expect(check.status, check.stderr).toBe(0);
  });
});

function parseSeconds(duration: string): number {
  const match = /^(\d+)s$/.exec(duration);
  if (!match) throw new Error(`expected a duration in seconds, got ${duration}`);
  return Number(match[1]);
}

function readFileSyncText(path: string): string {
  return readFileSync(repoPath(path), 'utf8');
}

function loadDockerfileArg(name: string): string | undefined {
  return new RegExp(`^ARG ${name}=(\\S+)`, 'm').exec(readFileSyncText('Dockerfile'))?.[1];
}
