import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import type { PublicTicket } from '@clinic-hub/protocol';
import { CliError, EXIT } from '../src/cli-error.js';
import { completionScript } from '../src/commands/completion.js';
import { resolveConnection } from '../src/connection.js';
import { colorEnabled } from '../src/output.js';
import { buildProgram } from '../src/program.js';
import { writeProfiles } from '../src/profiles.js';
import { sendAction, type Emit } from '../src/queue-client.js';
import { normalizeTicketNumber, resolveTicket } from '../src/queue-model.js';
import { diffSettingsPaths, flattenSettings, parseSettingValue, setSettingsPath } from '../src/settings-paths.js';

const fakeToken = (claims: object) => `eyJhbGciOiJIUzI1NiJ9.${Buffer.from(JSON.stringify({ sub: 's', exp: 9_999_999_999, ...claims })).toString('base64url')}.sig`;
const called = { event: { seq: 1, type: 'ticket.called' }, replayed: false };

describe('sendAction: one retry with the same requestId', () => {
  it('retries a lost ack once, with the same requestId', async () => {
    const sent: { requestId: string }[] = [];
    const emit: Emit = async (_event, payload) => {
      sent.push(payload as { requestId: string });
      if (sent.length === 1) throw new Error('operation has timed out');
      return { ok: true, ...called, replayed: true };
    };
    const ack = await sendAction(emit, 'queue:call-next', { dept: 'gp', room: 'r1' }, { retryDelayMs: 1 });
    expect(ack.replayed).toBe(true);
    expect(sent).toHaveLength(2);
    expect(sent[0]!.requestId).toMatch(/^[A-Za-z0-9_-]{8,64}$/);
    expect(sent[1]!.requestId).toBe(sent[0]!.requestId);
  });

  it('retries STORE_UNAVAILABLE once; a second failure is exit 69', async () => {
    let calls = 0;
    const unavailable: Emit = async () => {
      calls++;
      return { ok: false, error: { code: 'STORE_UNAVAILABLE', message: 'Redis down' } };
    };
    const error = await sendAction(unavailable, 'queue:done', { ticketId: 'abc' }, { retryDelayMs: 1 }).catch((e: CliError) => e);
    expect(calls).toBe(2);
    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).code).toBe('STORE_UNAVAILABLE');
    expect((error as CliError).exitCode).toBe(EXIT.UNAVAILABLE);

    const silent: Emit = async () => {
      throw new Error('operation has timed out');
    };
    const lost = (await sendAction(silent, 'queue:done', { ticketId: 'abc' }, { retryDelayMs: 1 }).catch((e: CliError) => e)) as CliError;
    expect(lost.code).toBe('HUB_NO_ANSWER');
    expect(lost.hint).toContain('may or may not have been applied');
  });

  it('does not retry other errors, and fresh actions get fresh requestIds', async () => {
    const ids: string[] = [];
    const emit: Emit = async (_event, payload) => {
      ids.push((payload as { requestId: string }).requestId);
      return { ok: false, error: { code: 'QUEUE_EMPTY', message: 'Nobody is waiting' } };
    };
    const first = (await sendAction(emit, 'queue:call-next', { dept: 'gp', room: 'r1' }).catch((e: CliError) => e)) as CliError;
    await sendAction(emit, 'queue:call-next', { dept: 'gp', room: 'r1' }).catch(() => undefined);
    expect(first.exitCode).toBe(EXIT.CONFLICT);
    expect(ids).toHaveLength(2);
    expect(ids[0]).not.toBe(ids[1]);
  });
});

describe('ticket references', () => {
  it('normalizes numbers the way people type them', () => {
    expect(normalizeTicketNumber('A-012')).toBe('A-012');
    expect(normalizeTicketNumber('a12')).toBe('A-012');
    expect(normalizeTicketNumber('b-3')).toBe('B-003');
    expect(normalizeTicketNumber('AB1234')).toBe('AB-1234');
    expect(normalizeTicketNumber('zpjN1IhahuDK')).toBeNull();
  });

  it('finds by id first, then by number; unknown is not found, duplicates are ambiguous', () => {
    const ticket = (id: string, number: string) => ({ id, number }) as PublicTicket;
    const tickets = [ticket('t1', 'A-001'), ticket('t2', 'A-002'), ticket('t3', 'B-001'), ticket('t4', 'B-001')];
    expect(resolveTicket(tickets, 'a2').id).toBe('t2');
    expect(resolveTicket(tickets, 't1').id).toBe('t1');
    expect(() => resolveTicket(tickets, 'A-009')).toThrow(expect.objectContaining({ code: 'QUEUE_TICKET_NOT_FOUND', exitCode: 4 }));
    expect(() => resolveTicket(tickets, 'B-001')).toThrow(expect.objectContaining({ code: 'TICKET_AMBIGUOUS' }));
  });
});

describe('which hub: flags, environment, profile, local stack', () => {
  const setup = () => {
    const config = mkdtempSync(join(tmpdir(), 'clinic-unit-'));
    const stack = mkdtempSync(join(tmpdir(), 'clinic-unit-stack-'));
    mkdirSync(join(stack, 'var'));
    writeFileSync(join(stack, 'var', 'local.json'), JSON.stringify({ url: 'http://local:8080', clinic: 'demo', adminToken: fakeToken({ role: 'admin', clinic: '*' }), expiresAt: 0, pid: 1 }));
    writeProfiles(join(config, 'clinic-hub', 'config.json'), {
      current: 'main',
      profiles: {
        main: { url: 'http://profile:8080', token: fakeToken({ role: 'staff', clinic: 'demo' }), savedAt: 0 },
        ops: { url: 'http://ops:8080', token: fakeToken({ role: 'admin', clinic: '*' }), clinic: 'north', savedAt: 0 },
      },
    });
    return { env: { XDG_CONFIG_HOME: config } as NodeJS.ProcessEnv, stack };
  };

  it('takes the first that is given', () => {
    const { env, stack } = setup();
    const flagToken = fakeToken({ role: 'staff', clinic: 'demo' });
    expect(resolveConnection({ url: 'http://flag/', token: flagToken }, { ...env, CLINIC_URL: 'http://env', CLINIC_TOKEN: 'x' }, stack)).toMatchObject({ source: 'flags', url: 'http://flag', token: flagToken });
    expect(resolveConnection({}, { ...env, CLINIC_URL: 'http://env', CLINIC_TOKEN: flagToken }, stack)).toMatchObject({ source: 'env', url: 'http://env' });
    expect(resolveConnection({}, env, stack)).toMatchObject({ source: 'profile', profile: 'main', url: 'http://profile:8080', clinic: 'demo' });
    expect(resolveConnection({ profile: 'ops' }, env, stack)).toMatchObject({ source: 'profile', profile: 'ops', clinic: 'north' });
    expect(resolveConnection({ profile: 'ops', clinic: 'south' }, { ...env, CLINIC_ID: 'east' }, stack)).toMatchObject({ clinic: 'south' });
    expect(resolveConnection({ profile: 'ops' }, { ...env, CLINIC_ID: 'east' }, stack)).toMatchObject({ clinic: 'east' });
    expect(resolveConnection({}, { XDG_CONFIG_HOME: join(stack, 'none') }, stack)).toMatchObject({ source: 'local', url: 'http://local:8080', clinic: 'demo' });
  });

  it('refuses what cannot work before asking the hub', () => {
    const { env, stack } = setup();
    expect(() => resolveConnection({ token: fakeToken({ role: 'staff', clinic: 'demo' }) }, env, stack)).toThrow(expect.objectContaining({ code: 'USAGE' }));
    expect(() => resolveConnection({ clinic: 'north' }, env, stack)).toThrow(expect.objectContaining({ code: 'AUTH_WRONG_CLINIC' }));
    expect(() => resolveConnection({ profile: 'nope' }, env, stack)).toThrow(expect.objectContaining({ code: 'PROFILE_NOT_FOUND' }));
    expect(() => resolveConnection({}, { XDG_CONFIG_HOME: join(stack, 'none'), CLINIC_LOCAL_FILE: join(stack, 'missing.json') }, stack)).toThrow(
      expect.objectContaining({ code: 'NOT_CONFIGURED', exitCode: EXIT.AUTH }),
    );
  });
});

describe('conventions', () => {
  it('every command has examples in its --help', () => {
    const program = buildProgram({ env: {}, cwd: tmpdir(), exitCode: 0 });
    const all: Command[] = [];
    const walk = (command: Command) => {
      for (const sub of command.commands) {
        all.push(sub);
        walk(sub);
      }
    };
    walk(program);
    expect(all.length).toBeGreaterThan(15);
    for (const command of [program, ...all]) {
      let help = '';
      command.configureOutput({ writeOut: (text) => (help += text), writeErr: (text) => (help += text) });
      command.outputHelp();
      expect(help, `clinic ${command.name()} --help`).toContain('Examples:');
    }
  });

  /** Every command's --help text, the root's first, by its full name ("clinic recordings export"). */
  function helpTexts(): Map<string, string> {
    const program = buildProgram({ env: {}, cwd: tmpdir(), exitCode: 0 });
    const texts = new Map<string, string>();
    const walk = (command: Command, name: string) => {
      let help = '';
      command.configureOutput({ writeOut: (text) => (help += text), writeErr: (text) => (help += text) });
      command.outputHelp();
      texts.set(name, help);
      for (const sub of command.commands) walk(sub, `${name} ${sub.name()}`);
    };
    walk(program, 'clinic');
    return texts;
  }
  const REPO = resolve(import.meta.dirname, '../..');
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');

  it('--help examples name departments and rooms the demo clinic has', () => {
    const demo = JSON.parse(readFileSync(join(REPO, 'config/clinics/demo.json'), 'utf8')) as { departments: { id: string; rooms: { id: string }[] }[] };
    const rooms = new Map(demo.departments.map((d) => [d.id, d.rooms.map((r) => r.id)]));
    let checked = 0;
    for (const [name, help] of helpTexts()) {
      for (const line of help.split('\n').filter((l) => /\bclinic .*--(dept|room) /.test(l))) {
        const dept = /--dept (\S+)/.exec(line)?.[1];
        const room = /--room (\S+)/.exec(line)?.[1];
        if (dept) expect([...rooms.keys()], `${name} --help: ${line.trim()}`).toContain(dept);
        if (room) expect(dept ? rooms.get(dept) : [...rooms.values()].flat(), `${name} --help: ${line.trim()}`).toContain(room);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(8);
  });

  it("the README's command table lists every command, and says what workers and models talk to as their --help does", () => {
    const texts = helpTexts();
    const rows = readme.split('\n').filter((l) => l.startsWith('| `clinic '));
    const topLevel = [...texts.keys()].filter((name) => name.split(' ').length === 2).map((name) => name.split(' ')[1]!);
    expect(topLevel.length).toBeGreaterThan(10);
    for (const command of topLevel) {
      // Commands listed together in one row: `clinic login`, `logout`, …
      const named = (row: string) => row.split(' | ')[0]!.replace(/[`\\]/g, ' ').split(/[\s|,[\]]+/);
      expect(rows.some((row) => named(row).includes(command)), `README has no row for clinic ${command}`).toBe(true);
    }
    const row = (command: string) => rows.find((r) => r.startsWith(`| \`clinic ${command}`)) ?? '';
    // workers: through the hub, like every other command.
    for (const text of [texts.get('clinic')!, texts.get('clinic workers')!, row('workers')]) expect(text).toContain('GET /api/ops/workers');
    expect(texts.get('clinic')).not.toMatch(/workers\S* (and \S+ )?reads? Redis/);
    // models: the models directory and the model hub of a worker's machine, not the hub.
    for (const text of [texts.get('clinic')!, texts.get('clinic models')!, row('models')]) {
      expect(text).toContain('AI_MODELS_DIR');
      expect(text).toContain('AI_MODELS_HUB_URL');
    }
  });

  it('colour only on a terminal without NO_COLOR', () => {
    expect(colorEnabled({ isTTY: true }, {})).toBe(true);
    expect(colorEnabled({ isTTY: false }, {})).toBe(false);
    expect(colorEnabled({ isTTY: true }, { NO_COLOR: '1' })).toBe(false);
    expect(colorEnabled({ isTTY: true }, { TERM: 'dumb' })).toBe(false);
  });

  it('bash completion completes commands, subcommands and option values', () => {
    const program = buildProgram({ env: {}, cwd: tmpdir(), exitCode: 0 });
    const script = completionScript(program, 'bash');
    const complete = (line: string) => {
      const words = line.split(' ');
      const probe = `${script}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _clinic_completion; printf '%s\\n' "\${COMPREPLY[@]}"`;
      return execFileSync('bash', ['-c', probe], { encoding: 'utf8' }).trim().split('\n');
    };
    expect(complete('clinic ca')).toEqual(expect.arrayContaining(['call-next', 'cancel']));
    expect(complete('clinic token ')).toEqual(['issue', 'revoke', 'revocations', '--help']);
    expect(complete('clinic token issue --role ')).toEqual(['admin', 'staff', 'doctor', 'patient', 'display', 'service', 'kiosk']);
    expect(complete('clinic queue --dept gp --')).toEqual(expect.arrayContaining(['--watch', '--json', '--dept']));
    expect(complete('clinic completion ')).toEqual(expect.arrayContaining(['bash', 'zsh']));
  });

  it('zsh completion is valid zsh', () => {
    const program = buildProgram({ env: {}, cwd: tmpdir(), exitCode: 0 });
    const script = completionScript(program, 'zsh');
    expect(script.startsWith('#compdef clinic')).toBe(true);
    let zsh: string | null = null;
    try {
      zsh = execFileSync('sh', ['-c', 'command -v zsh'], { encoding: 'utf8' }).trim() || null;
    } catch {
      zsh = null;
    }
    if (!zsh) {
      console.warn('unit.test.ts: zsh is not installed; checked the zsh completion script’s shape only');
      expect(script).toContain("'call-next:call the next waiting ticket to a room (in an online department, admit to video)'");
      return;
    }
    execFileSync(zsh, ['-n', '-c', script]);
  });
});

describe('settings by path (clinic settings)', () => {
  const clinic = {
    id: 'c',
    spokenCallLanguages: ['ja', 'en'],
    ai: { enabled: false },
    departments: [{ id: 'gp', rooms: [{ id: 'r1', open: true }, { id: 'r2', open: true }] }],
  };

  it('names departments and rooms by id, other lists as one value', () => {
    expect([...flattenSettings(clinic)]).toEqual([
      ['id', '"c"'],
      ['spokenCallLanguages', '["ja","en"]'],
      ['ai.enabled', 'false'],
      ['departments.gp.id', '"gp"'],
      ['departments.gp.rooms.r1.id', '"r1"'],
      ['departments.gp.rooms.r1.open', 'true'],
      ['departments.gp.rooms.r2.id', '"r2"'],
      ['departments.gp.rooms.r2.open', 'true'],
    ]);
  });

  it('sets one value without touching the original, and says what is wrong with a bad path', () => {
    const changed = setSettingsPath(clinic, 'departments.gp.rooms.r2.open', false);
    expect(changed.departments[0]!.rooms[1]!.open).toBe(false);
    expect(clinic.departments[0]!.rooms[1]!.open).toBe(true);
    expect(diffSettingsPaths(clinic, changed)).toEqual([{ path: 'departments.gp.rooms.r2.open', before: true, after: false }]);
    expect(() => setSettingsPath(clinic, 'departments.xx.rooms.r1.open', false)).toThrow('no "xx" in departments (it has gp)');
    expect(() => setSettingsPath(clinic, 'departments.gp', {})).toThrow('whole departments entry');
    expect(() => setSettingsPath(clinic, 'ai.enabled.more', 1)).toThrow('ai.enabled is a single value');
    expect(() => setSettingsPath(clinic, 'nothing.here', 1)).toThrow('no setting "nothing"');
    expect(parseSettingValue('3')).toBe(3);
    expect(parseSettingValue('["en"]')).toEqual(['en']);
    expect(parseSettingValue('Asia/Tokyo')).toBe('Asia/Tokyo');
  });
});
