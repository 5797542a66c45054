/**
 * `npm start` as a newcomer runs it: the links it prints open from this
 * machine and from the local network, line up, and include a doctor's way in
 * whose consultations are joined as the doctor (the staff console's as a
 * nurse). start.ts runs from a copy of scripts/ in a temporary root whose
 * other folders link to the repository's, so its var/ (secrets, the CLI's
 * local.json) is the test's own and never the developer's.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consultRequest, connectConsult } from '@clinic-hub/test-kit/consult-client';
import { childNodeArgs } from '@clinic-hub/test-kit/hub-node';
import { connectQueue, request } from '@clinic-hub/test-kit/queue-client';
import { freePort } from '@clinic-hub/platform/redis-server';
import { cleanEnv, runCli } from '@clinic-hub/test-kit/run-cli';
import { alignRows, lanAddress, lanUrl, startBanner } from './start-banner.js';

const REPO = resolve(import.meta.dirname, '..');

/** The payload of a hub token, unverified: which role the printed link carries. */
function claims(token: string): { role: string; clinic: string; sub: string } {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { role: string; clinic: string; sub: string };
}

/** The column each row's value starts at (after "label:" and the padding). */
function valueColumns(lines: string[]): number[] {
  return lines.map((line) => line.search(/(?<=:\s{2,})\S/));
}

describe('lanAddress', () => {
  it('is the first IPv4 address that is not loopback, from the interfaces as Node reports them', () => {
    const real = networkInterfaces();
    const expected = Object.values(real).flat().find((a) => a?.family === 'IPv4' && !a.internal)?.address ?? null;
    expect(lanAddress(real)).toBe(expected);
    expect(
      lanAddress({
        lo: [{ address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: true, cidr: '127.0.0.1/8' }],
        eth0: [
          { address: 'fe80::1', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '02:00:00:00:00:01', internal: false, cidr: 'fe80::1/64', scopeid: 2 },
          { address: '192.168.1.23', netmask: '255.255.255.0', family: 'IPv4', mac: '02:00:00:00:00:01', internal: false, cidr: '192.168.1.23/24' },
        ],
        docker0: [{ address: '172.17.0.1', netmask: '255.255.0.0', family: 'IPv4', mac: '02:42:00:00:00:01', internal: false, cidr: '172.17.0.1/16' }],
      }),
    ).toBe('192.168.1.23');
    expect(lanAddress({ lo: real.lo?.filter((a) => a.internal) ?? [] })).toBeNull();
  });

  it('gives a LAN URL only when the hub listens there', () => {
    expect(lanUrl('0.0.0.0', 8080, '192.168.1.23')).toBe('http://192.168.1.23:8080');
    expect(lanUrl('192.168.1.23', 8080, '192.168.1.23')).toBe('http://192.168.1.23:8080');
    expect(lanUrl('127.0.0.1', 8080, '192.168.1.23')).toBeNull();
    expect(lanUrl('0.0.0.0', 8080, null)).toBeNull();
  });

  it('aligns values in one column whatever the labels', () => {
    const lines = alignRows([
      ['A', 'x'],
      ['A longer label', 'y'],
      ['Mid label', 'z'],
    ]);
    expect(new Set(valueColumns(lines)).size).toBe(1);
    expect(lines[1]).toBe('  A longer label:  y');
  });

  it('says how to set the public URL, and names the LAN address it uses', () => {
    const facts = {
      server: 'uws' as const,
      clinic: 'demo',
      localUrl: 'http://localhost:8080',
      tokens: { display: 'd.d.d', staff: 's.s.s', doctor: 'o.o.o' },
      mediaUrl: 'http://localhost:8090',
      recordingsDir: '/srv/var/recordings',
      aiWorkerCommand: null,
    };
    const lan = startBanner({ ...facts, configuredPublicUrl: null, lanUrl: 'http://192.168.1.23:8080' });
    expect(lan).toContain('http://192.168.1.23:8080/display#token=d.d.d');
    expect(lan).toContain('HUB_PUBLIC_URL=https://clinic.example.jp npm start');
    const none = startBanner({ ...facts, configuredPublicUrl: null, lanUrl: null });
    expect(none).not.toContain('LAN address):');
    expect(none).toContain('HUB_PUBLIC_URL=http://ADDRESS:PORT npm start');
    const configured = startBanner({ ...facts, configuredPublicUrl: 'https://hub.example.jp', lanUrl: null });
    expect(configured).toContain('https://hub.example.jp/staff#token=s.s.s');
  });
});

describe('npm start, end to end', () => {
  let root: string;
  let child: ChildProcess;
  let output = '';
  const lan = lanAddress(networkInterfaces());

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'clinic-start-'));
    cpSync(join(REPO, 'scripts'), join(root, 'scripts'), { recursive: true });
    for (const name of ['hub', 'media-server', 'protocol', 'config', 'web', 'node_modules', 'package.json']) symlinkSync(join(REPO, name), join(root, name));
    const [hubPort, mediaPort, redisPort] = [await freePort(), await freePort(), await freePort()];
    const env: NodeJS.ProcessEnv = { ...process.env, HUB_PORT: String(hubPort), MEDIA_PORT: String(mediaPort), REDIS_PORT: String(redisPort), LOG_LEVEL: 'warn' };
    for (const key of ['HUB_PUBLIC_URL', 'HUB_HOST', 'REDIS_URL', 'MEDIA_PUBLIC_URL', 'HUB_TOKEN_SECRET', 'MEDIA_TOKEN_SECRET', 'AI_STT_ENGINE', 'AI_STT_MODEL_JA', 'AI_STT_MODEL_EN']) delete env[key];
    child = spawn(process.execPath, childNodeArgs(join(root, 'scripts/start.ts')), { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const deadline = Date.now() + 90_000;
    while (!output.includes('Press Ctrl-C to stop.')) {
      if (child.exitCode !== null) throw new Error(`npm start exited ${child.exitCode}:\n${output}`);
      if (Date.now() > deadline) throw new Error(`npm start printed no links in 90 s:\n${output}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }, 120_000);

  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGINT');
      await exited;
    }
    if (root) rmSync(root, { recursive: true, force: true });
  }, 30_000);

  /** The printed rows of one section: from its heading line to the next blank line. */
  function section(heading: RegExp): string[] {
    const lines = output.split('\n');
    const start = lines.findIndex((line) => heading.test(line));
    if (start < 0) return [];
    const end = lines.findIndex((line, i) => i > start && line.trim() === '');
    return lines.slice(start + 1, end < 0 ? undefined : end);
  }
  const link = (rows: string[], label: string) => rows.find((row) => row.trimStart().startsWith(label))?.split(/:\s{2,}/)[1]?.split(/\s/)[0] ?? '';

  it('prints the links of this machine in one column, with a doctor\'s console', () => {
    const rows = section(/^On this machine:/);
    expect(rows.length).toBeGreaterThanOrEqual(8);
    expect(new Set(valueColumns(rows)).size, rows.join('\n')).toBe(1);
    const doctor = link(rows, "Doctor's console (demo)");
    expect(doctor).toMatch(/^http:\/\/localhost:\d+\/staff#token=/);
    expect(claims(doctor.split('#token=')[1]!)).toMatchObject({ role: 'doctor', clinic: 'demo' });
    expect(claims(link(rows, 'Staff console (demo)').split('#token=')[1]!)).toMatchObject({ role: 'staff', clinic: 'demo' });
  });

  it.skipIf(lan === null)('prints the links at the LAN address too, which open from there, and patient links use it', async () => {
    const rows = section(/^From other devices on this network/);
    expect(new Set(valueColumns(rows)).size, rows.join('\n')).toBe(1);
    const display = link(rows, 'Waiting-room display (demo)');
    expect(display).toMatch(new RegExp(`^http://${lan!.replace(/\./g, '\\.')}:\\d+/display#token=`));
    const base = new URL(display).origin;
    const page = await fetch(`${base}/display`);
    expect(page.status).toBe(200);
    expect(output).toContain(`Patient links (check-in) use ${base}, this machine's LAN address`);
    expect(output).toContain('HUB_PUBLIC_URL=');

    const staffToken = link(rows, 'Staff console (demo)').split('#token=')[1]!;
    const queue = await connectQueue(base, staffToken);
    try {
      const checkin = await request(queue, 'queue:checkin', { dept: 'internal' });
      expect(checkin.ok && checkin.patientUrl.startsWith(`${base}/ticket#token=`)).toBe(true);
    } finally {
      queue.close();
    }
  });

  it("the doctor's console joins a consultation as the doctor, the staff console as a nurse", async () => {
    const rows = section(/^On this machine:/);
    const base = new URL(link(rows, 'Health')).origin;
    const staffToken = link(rows, 'Staff console (demo)').split('#token=')[1]!;
    const doctorToken = link(rows, "Doctor's console (demo)").split('#token=')[1]!;
    const queue = await connectQueue(base, staffToken);
    const doctor = await connectConsult(base, doctorToken);
    const staff = await connectConsult(base, staffToken);
    try {
      const checkin = await request(queue, 'queue:checkin', { dept: 'online' });
      expect(checkin.ok).toBe(true);
      // The media-server announces itself in Redis a moment after its /healthz answers.
      let admitted = await consultRequest(doctor, 'consult:admit', { dept: 'online', room: 'video1' });
      for (let i = 0; !admitted.ok && admitted.error.code === 'MEDIA_NODE_UNAVAILABLE' && i < 50; i++) {
        await new Promise((r) => setTimeout(r, 200));
        admitted = await consultRequest(doctor, 'consult:admit', { dept: 'online', room: 'video1' });
      }
      if (!admitted.ok) throw new Error(JSON.stringify(admitted.error));
      expect(admitted.pass.part).toBe('doctor');
      const nurse = await consultRequest(staff, 'consult:join', { consult: admitted.consultation.id });
      expect(nurse.ok && nurse.pass.part).toBe('nurse');
      await consultRequest(doctor, 'consult:end', { consult: admitted.consultation.id });

      // The printed command for another doctor's console, run as printed (from the repository, by the local stack's admin token).
      const command = /npx clinic (token issue [^\n]+)/.exec(output)?.[1]?.replace('NAME', 'tanaka');
      expect(command).toBeDefined();
      const issued = await runCli(command!.split(' '), { env: cleanEnv({ CLINIC_LOCAL_FILE: undefined }), cwd: root });
      expect(issued.code, issued.stderr).toBe(0);
      expect(claims(issued.stdout.trim())).toMatchObject({ role: 'doctor', clinic: 'demo', sub: 'doctor:demo:tanaka' });
      expect(issued.stderr).toMatch(/Page: http:\/\/localhost:\d+\/staff#token=/);
    } finally {
      queue.close();
      doctor.close();
      staff.close();
    }
  });
});
