import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { benchCommandLine, reportedOptions } from '../harness/bench-cli.js';
import { QUEUE_OPTIONS } from '../harness/bench-queue.js';

const REPO_ROOT = resolve(import.meta.dirname, '../..');

const demo = benchCommandLine({
  name: 'bench:demo',
  report: 'load-tests/results/demo.json',
  profiles: 'every demo process',
  options: {
    clients: { kind: 'integer', default: 20, min: 1, max: 100, help: 'clients' },
    rate: { kind: 'number', arg: 'R', default: 2.5, min: 0.1, max: 10, help: 'per second' },
    warmupSeconds: { flag: 'warmup', kind: 'number', arg: 'S', default: 1, min: 0, max: 5, help: 'unmeasured seconds first' },
    server: { kind: 'choice', arg: 'KIND', choices: ['uws', 'node'], default: 'uws', help: 'the server' },
    servers: { kind: 'choice', list: true, choices: ['uws', 'node'], default: ['uws', 'node'], help: 'phases' },
    steps: { kind: 'integer', list: true, default: [5, 10], min: 1, max: 50, help: 'ramp' },
    video: { kind: 'string', arg: 'WxH', default: '640x360', help: 'camera size' },
    svg: { kind: 'string', arg: 'FILE', defaultHelp: 'next to --out', help: 'chart' },
    noChat: { kind: 'boolean', help: 'no chat' },
  },
});

const parsed = (argv: string[]) => {
  const result = demo.parse(argv);
  if (!('options' in result)) throw new Error('asked for help');
  return result.options;
};

describe('bench command line', () => {
  it('gives every default, and the report file under the repository, without arguments', () => {
    expect(demo.defaults).toEqual({
      clients: 20,
      rate: 2.5,
      warmupSeconds: 1,
      server: 'uws',
      servers: ['uws', 'node'],
      steps: [5, 10],
      video: '640x360',
      svg: null,
      noChat: false,
      out: resolve(REPO_ROOT, 'load-tests/results/demo.json'),
      profileDir: null,
    });
    expect(parsed([])).toEqual(demo.defaults);
  });

  it('reads each kind: kebab-case and renamed flags, rounded integers, lists, booleans, --out, --no-out and --profile', () => {
    const options = parsed(['--clients', '7.4', '--rate', '0.5', '--warmup', '0', '--server', 'node', '--servers', 'node, uws', '--steps', '3,9.6', '--svg', 'a.svg', '--no-chat', '--out', 'x.json', '--profile', 'prof']);
    expect(options).toMatchObject({ clients: 7, rate: 0.5, warmupSeconds: 0, server: 'node', servers: ['node', 'uws'], steps: [3, 10], svg: 'a.svg', noChat: true });
    expect(options.out).toBe(resolve('x.json'));
    expect(options.profileDir).toBe(resolve('prof'));
    expect(parsed(['--no-out']).out).toBeNull();
    expect(reportedOptions(options)).not.toHaveProperty('out');
    expect(reportedOptions(options)).not.toHaveProperty('profileDir');
  });

  it('refuses a value out of bounds or not among the choices, naming the option', () => {
    expect(() => demo.parse(['--clients', 'x'])).toThrow('--clients must be a number from 1 to 100 (got "x")');
    expect(() => demo.parse(['--clients', '0.2'])).toThrow('--clients must be a number from 1 to 100 (got "0.2")');
    expect(() => demo.parse(['--warmup', '6'])).toThrow('--warmup must be a number from 0 to 5 (got "6")');
    expect(() => demo.parse(['--steps', '5,51'])).toThrow('--steps must be a number from 1 to 50 (got "51")');
    expect(() => demo.parse(['--server', 'ws'])).toThrow('--server takes uws or node (got "ws")');
    expect(() => demo.parse(['--servers', 'uws,ws'])).toThrow('--servers takes uws and/or node (got "ws")');
  });

  it('refuses unknown options and stray arguments', () => {
    expect(() => demo.parse(['--clinets', '5'])).toThrow(/--clinets/);
    expect(() => demo.parse(['5'])).toThrow(/5/);
    expect(() => demo.parse(['--no-chat=yes'])).toThrow(/--no-chat/);
  });

  it('writes --help from the table: usage, one aligned line per option with its default and bounds, the common options', () => {
    expect(demo.parse(['--help'])).toEqual({ help: demo.help });
    expect(demo.parse(['-h', '--clients', 'x'])).toEqual({ help: demo.help });
    const lines = demo.help.trimEnd().split('\n');
    expect(lines[0]).toBe('npm run bench:demo -- [options]');
    expect(lines.slice(1)).toEqual([
      '  --clients N     clients (default 20; 1 to 100)',
      '  --rate R        per second (default 2.5; 0.1 to 10)',
      '  --warmup S      unmeasured seconds first (default 1; 0 to 5)',
      '  --server KIND   the server (default uws; uws or node)',
      '  --servers LIST  phases (default uws,node; uws and/or node)',
      '  --steps LIST    ramp (default 5,10; each 1 to 50)',
      '  --video WxH     camera size (default 640x360)',
      '  --svg FILE      chart (default next to --out)',
      '  --no-chat       no chat',
      '  --out FILE      JSON report (default load-tests/results/demo.json)',
      '  --no-out        no JSON report',
      '  --profile DIR   --cpu-prof every demo process into DIR',
      '  -h, --help      this text',
    ]);
  });

  it('refuses a table whose default breaks its own bounds', () => {
    expect(() =>
      benchCommandLine({ name: 'bench:bad', report: 'bad.json', profiles: 'nothing', options: { size: { kind: 'integer', default: 9, min: 2, max: 6, help: 'size' } } }),
    ).toThrow('--size must be a number from 2 to 6 (got "9")');
  });
});

describe('bench:queue options', () => {
  it('keeps its defaults, bounds and the check across --rate and --seconds', () => {
    expect(reportedOptions(QUEUE_OPTIONS.defaults)).toEqual({
      clients: 2000,
      rate: 10,
      rates: [10],
      seconds: 10,
      warmupSeconds: 2,
      nodes: 2,
      workers: 4,
      servers: ['uws', 'node', 'limit', 'mosquitto', 'nats'],
      mqttVersion: '3.1.1',
      rampConcurrency: 16,
      settleSeconds: 5,
      targetP99Ms: 100,
      redis: 'single',
    });
    expect(QUEUE_OPTIONS.defaults.out).toBe(resolve(REPO_ROOT, 'load-tests/results/queue.json'));
    expect(() => QUEUE_OPTIONS.parse(['--clients', 'x'])).toThrow('--clients must be a number from 1 to 20000 (got "x")');
    expect(() => QUEUE_OPTIONS.parse(['--rate', '0.1', '--seconds', '5'])).toThrow('--rate × --seconds must make at least one call');
    expect(QUEUE_OPTIONS.parse(['--rate', '0.2', '--seconds', '5'])).toMatchObject({ options: { rate: 0.2, rates: [0.2], seconds: 5 } });
    // A sweep: every server at each rate, in the order given; each rate must make a call.
    expect(QUEUE_OPTIONS.parse(['--rate', '2.5,5,10', '--servers', 'uws,limit,uws'])).toMatchObject({ options: { rate: 2.5, rates: [2.5, 5, 10], servers: ['uws', 'limit'] } });
    expect(() => QUEUE_OPTIONS.parse(['--rate', '1,0.1', '--seconds', '5'])).toThrow('--rate × --seconds must make at least one call');
    expect(() => QUEUE_OPTIONS.parse(['--servers', 'uws,kafka'])).toThrow('--servers takes uws, node, limit, mosquitto and/or nats (got "kafka")');
    expect(() => QUEUE_OPTIONS.parse(['--mqtt', '3'])).toThrow('--mqtt takes 3.1.1 or 5 (got "3")');
    expect(QUEUE_OPTIONS.parse(['--redis', 'sentinel'])).toMatchObject({ options: { redis: 'sentinel' } });
    expect(QUEUE_OPTIONS.parse(['--redis', 'cluster'])).toMatchObject({ options: { redis: 'cluster' } });
    expect(() => QUEUE_OPTIONS.parse(['--redis', 'replica'])).toThrow('--redis takes single, sentinel or cluster (got "replica")');
    expect(QUEUE_OPTIONS.help).toMatch(/^ {2}--clients N +display clients, spread over the nodes and generator processes \(default 2000; 1 to 20000\)$/m);
  });
});
