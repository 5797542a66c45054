import type { Command } from 'commander';
import type { QueueSnapshot } from '@clinic-hub/protocol';
import { CliError } from '../cli-error.js';
import { connectionOptions, examples, handle, jsonOption, type Runtime } from '../command-kit.js';
import { requireClinic } from '../connection.js';
import { hubRequest } from '../hub-http.js';
import { ticketSince } from '../describe.js';
import { followerFromSnapshot, queueView, type DepartmentView, type QueueView } from '../queue-model.js';
import { STATUS_LABEL, bilingual, table, type Output } from '../output.js';
import { runLiveView } from '../views/run-live-view.js';

export const roomOccupancy = (dept: DepartmentView) =>
  dept.rooms.map((r) => `${r.id} ${r.ticket ? `${r.ticket.number} ${STATUS_LABEL[r.ticket.status]}` : 'free'}`).join(' · ');

export function printQueue(out: Output, view: QueueView): void {
  const s = out.style;
  const now = Date.now();
  out.line(`${s.bold(bilingual(view.clinic.name))} (${view.clinic.id}) · seq ${view.seq}`);
  for (const dept of view.departments) {
    out.line();
    const average = `avg consult ${dept.avgConsultMinutes} min${dept.measuredSamples ? ` (${dept.measuredSamples} measured)` : ' (configured default)'}`;
    const open = `${dept.openRooms.length} of ${dept.rooms.length} room${dept.rooms.length === 1 ? '' : 's'} open`;
    out.line(`${s.bold(`${bilingual(dept.name)} (${dept.id})`)} · ${dept.waiting} waiting · a new check-in waits ~${dept.typicalWaitMinutes} min · ${open} · ${average}`);
    out.line(`  ${s.dim('Rooms:')} ${roomOccupancy(dept)}`);
    if (dept.tickets.length === 0) {
      out.line(`  ${s.dim('nobody in line')}`);
      continue;
    }
    const rows = dept.tickets.map((t) => [
      t.number,
      t.priority === 'urgent' ? s.red('urgent') : 'normal',
      t.status === 'called' ? s.yellow(STATUS_LABEL.called!) : t.status === 'in_consultation' ? s.cyan(STATUS_LABEL.in_consultation!) : STATUS_LABEL[t.status]!,
      t.room ?? '',
      t.ahead === null ? '' : String(t.ahead),
      t.waitMinutes === null ? '' : `~${t.waitMinutes} min`,
      ticketSince(t, now),
    ]);
    for (const line of table(['NUMBER', 'PRI', 'STATUS', 'ROOM', 'AHEAD', 'WAIT', 'SINCE'], rows, { headerStyle: s.dim })) out.line(`  ${line}`);
  }
}

export function registerQueueCommand(program: Command, runtime: Runtime): void {
  const queue = connectionOptions(program.command('queue'))
    .summary('tickets per department with estimated waits (--watch: live view)')
    .description('tickets per department: number, priority, status, room and estimated wait')
    .option('--dept <id>', 'only this department')
    .option('-w, --watch', 'live view that follows the queue’s events, with keys to call, recall, skip, finish and cancel')
    .addOption(jsonOption());
  examples(queue, [
    'clinic queue',
    'clinic queue --dept internal --json | jq ".departments[0].tickets[] | {number, status, waitMinutes}"',
    'clinic queue --watch --dept internal',
  ]);
  handle<{ dept?: string; watch?: boolean }>(queue, runtime, async ({ out, connection }, options) => {
    const c = connection();
    const clinic = requireClinic(c);
    if (options.watch) {
      await runLiveView(out, 'queue', { connection: c, ...(options.dept ? { dept: options.dept } : {}) });
      return;
    }
    const snapshot = await hubRequest<QueueSnapshot>(c, `/api/clinics/${encodeURIComponent(clinic)}/queue`);
    const view = queueView(await followerFromSnapshot(snapshot))!;
    if (options.dept) {
      view.departments = view.departments.filter((d) => d.id === options.dept);
      if (view.departments.length === 0) {
        throw new CliError('QUEUE_DEPT_NOT_FOUND', { detail: `${options.dept} (this clinic has: ${snapshot.clinic.departments.map((d) => d.id).join(', ')})` });
      }
    }
    if (out.json) out.data(view);
    else printQueue(out, view);
  });
}
