import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@clinic-hub/platform/redis-server';
import { haproxyConfigForTest, repoPath } from './deploy-files.js';
import { sleep } from '@clinic-hub/test-kit/wait';

export interface Haproxy {
  url: string;
  /** Each server's state as HAProxy's health checks see it: UP, DOWN, … */
  serverStates(): Promise<Record<string, string>>;
  logs(): string;
  stop(): Promise<void>;
}

/**
 * Debian's haproxy (.ci/run installs it) running deploy/haproxy/haproxy.cfg,
 * the file docker-compose.yml mounts, with the hub servers pointed at local
 * hub processes. Resolves once every server passed its health checks.
 */
export async function startHaproxy(hubPorts: Record<string, number>): Promise<Haproxy> {
  const [frontendPort, statsPort] = [await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), 'clinic-hub-haproxy-'));
  const configFile = join(dir, 'haproxy.cfg');
  writeFileSync(configFile, haproxyConfigForTest(readFileSync(repoPath('deploy/haproxy/haproxy.cfg'), 'utf8'), { hubPorts, frontendPort, statsPort }));
  const child = spawn('haproxy', ['-db', '-f', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-20_000)));
  child.stderr.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-20_000)));
  const spawnFailed = new Promise<Error>((resolve) => child.once('error', resolve));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  const serverStates = async (): Promise<Record<string, string>> => {
    const csv = await (await fetch(`http://127.0.0.1:${statsPort}/stats;csv`)).text();
    const [header, ...rows] = csv.replace(/^# /, '').trim().split('\n');
    const columns = header!.split(',');
    const [proxy, server, status] = ['pxname', 'svname', 'status'].map((name) => columns.indexOf(name));
    return Object.fromEntries(
      rows.map((row) => row.split(',')).filter((cells) => cells[proxy!] === 'hubs' && cells[server!] !== 'BACKEND').map((cells) => [cells[server!], cells[status!]]),
    ) as Record<string, string>;
  };

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 15_000;
  for (;;) {
    const failed = await Promise.race([spawnFailed, sleep(200).then(() => null)]);
    if (failed) throw new Error(`haproxy could not start (is it installed? .ci/run installs it): ${failed.message}`);
    if (child.exitCode !== null) throw new Error(`haproxy exited: ${output}`);
    const states = await serverStates().catch(() => ({}) as Record<string, string>);
    if (Object.keys(hubPorts).every((name) => states[name] === 'UP')) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`haproxy's servers did not come up: ${JSON.stringify(states)} ${output}`);
    }
  }
  return { url: `http://127.0.0.1:${frontendPort}`, serverStates, logs: () => output, stop };
}
