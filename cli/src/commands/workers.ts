import type { Command } from 'commander';
import type { OpsWorkers } from '@clinic-hub/protocol';
import { connectionOptions, examples, handle, jsonOption, type Runtime } from '../command-kit.js';
import { hubRequest } from '../hub-http.js';
import { ago, duration, table, type Output } from '../output.js';

export function printWorkers(out: Output, view: OpsWorkers): void {
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

/** `clinic workers`: the hub's view of the AI workers' heartbeats and the BullMQ queues (`GET /api/ops/workers`). */
export function registerWorkersCommand(program: Command, runtime: Runtime): void {
  const command = connectionOptions(program.command('workers'))
    .summary('AI workers alive and BullMQ queue depths (ai-sessions, ai-recordings, recordings, notifications, webhooks)')
    .description(
      'AI workers that are alive (their heartbeat: sessions in hand, engines, how far behind the audio) and the depth of the job queues, ' +
        'as the hub sees them (GET /api/ops/workers; admin, staff or service token). Ids and counts only, no patient data.',
    )
    .addOption(jsonOption());
  examples(command, ['clinic workers', 'clinic workers --json | jq ".queues[] | {queue, waiting: .counts.waiting}"']);
  handle(command, runtime, async ({ out, connection }) => {
    const view = await hubRequest<OpsWorkers>(connection(), '/api/ops/workers');
    if (out.json) out.data(view);
    else printWorkers(out, view);
  });
}
