import type { Command } from 'commander';
import { Option } from 'commander';
import type { AiWorkerInfo, QueueDepth } from '@clinic-hub/ai-workers/ops';
import { CliError } from '../cli-error.js';
import { examples, handle, jsonOption, type Runtime } from '../command-kit.js';
import { ago, duration, table, type Output } from '../output.js';

export interface WorkersView {
  checkedAt: number;
  workers: AiWorkerInfo[];
  queues: QueueDepth[];
}

export function printWorkers(out: Output, view: WorkersView): void {
  const s = out.style;
  out.line(s.bold('AI workers') + s.dim(' (alive: heartbeat within 15 s)'));
  if (view.workers.length === 0) out.line(`  ${s.yellow('none')} — live consultations get no transcripts until one runs (\`npm run ai:worker\`)`);
  else
    for (const line of table(
      ['WORKER', 'HOST', 'SESSIONS', 'RECORDINGS', 'STT', 'EMOTION', 'LAG', 'BEAT', 'UP'],
      view.workers.map((w) => [
        w.stopping ? s.yellow(`${w.id} (stopping)`) : w.id,
        `${w.host}:${w.pid}`,
        `${w.sessions}/${w.concurrency}`,
        String(w.recordings),
        w.stt,
        w.emotion,
        w.lagSeconds > 1 ? s.yellow(`${w.lagSeconds.toFixed(1)}s`) : `${w.lagSeconds.toFixed(1)}s`,
        ago(w.beatAt, view.checkedAt),
        duration(Math.round((view.checkedAt - w.startedAt) / 1000)),
      ]),
      { headerStyle: s.dim },
    ))
      out.line(`  ${line}`);
  out.line();
  out.line(s.bold('Queues'));
  for (const line of table(
    ['QUEUE', 'WAITING', 'ACTIVE', 'DELAYED', 'FAILED', 'COMPLETED', 'WORKERS'],
    view.queues.map((q) => [
      q.queue,
      String(q.counts.waiting + q.counts.prioritized),
      String(q.counts.active),
      String(q.counts.delayed),
      q.counts.failed > 0 ? s.red(String(q.counts.failed)) : '0',
      String(q.counts.completed),
      String(q.workers),
    ]),
    { headerStyle: s.dim },
  ))
    out.line(`  ${line}`);
}

/** `clinic workers`: reads the AI workers' heartbeats and the BullMQ queues from Redis (the machines that run the workers). */
export function registerWorkersCommand(program: Command, runtime: Runtime): void {
  const command = program
    .command('workers')
    .summary('AI workers alive and BullMQ queue depths (ai-sessions, ai-recordings, recordings, notifications)')
    .description(
      'AI workers that are alive (their heartbeat: sessions in hand, engines, how far behind the audio) and the depth of the job queues. ' +
        'Reads Redis directly: run it where REDIS_URL (or --redis) reaches the stack\'s Redis. Ids only, no patient data.',
    )
    .addOption(new Option('--redis <url>', 'Redis of the stack (else REDIS_URL)'))
    .addOption(jsonOption());
  examples(command, ['clinic workers', 'REDIS_URL=redis://10.0.0.5:6379 clinic workers --json | jq ".queues[] | {queue, waiting: .counts.waiting}"']);
  handle<{ redis?: string }>(command, runtime, async ({ out, env }, options) => {
    const url = options.redis ?? env.REDIS_URL;
    if (!url) throw new CliError('REDIS_NOT_CONFIGURED');
    if (!/^rediss?:\/\//.test(url)) throw new CliError('USAGE', { message: '--redis / REDIS_URL must start with redis:// or rediss://' });
    // Loaded here, not at start-up: no other command pays for ioredis and BullMQ.
    const [{ Redis }, { readQueueDepths, readWorkers }] = await Promise.all([import('ioredis'), import('@clinic-hub/ai-workers/ops')]);
    const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 3000, retryStrategy: () => null });
    redis.on('error', () => undefined);
    try {
      await redis.connect().catch((error: Error) => {
        throw new CliError('REDIS_UNREACHABLE', { detail: error.message });
      });
      const [workers, queues] = await Promise.all([readWorkers(redis), readQueueDepths(redis)]);
      const view: WorkersView = { checkedAt: Date.now(), workers, queues };
      if (out.json) out.data(view);
      else printWorkers(out, view);
    } finally {
      redis.disconnect();
    }
  });
}
