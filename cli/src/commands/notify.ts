import type { Command } from 'commander';
import type { DeadLetter, NotifyOverview, PendingNotice } from '@clinic-hub/protocol';
import { CliError } from '../cli-error.js';
import { connectionOptions, examples, handle, jsonOption, type Runtime } from '../command-kit.js';
import { hubRequest } from '../hub-http.js';
import { ago, duration, table, type Output } from '../output.js';

/** Who a notice is for, as staff know them: the ticket number, else the ticket or appointment id; a test send by its channel (never its address). */
const recipientLabel = (notice: DeadLetter | PendingNotice) =>
  notice.recipient.type === 'ticket'
    ? (notice.ticketNumber ?? notice.recipient.ticketId)
    : notice.recipient.type === 'appointment'
      ? `appt ${notice.recipient.appointmentId}`
      : 'test send';

/** The part of a reason after its code ("NOTIFY_PROVIDER_FAILED: sms 503" → "sms 503"). */
const reasonDetail = (code: string, reason: string) => (reason.startsWith(`${code}: `) ? reason.slice(code.length + 2) : reason);

const dueIn = (at: number, now: number) => (at <= now ? 'due' : `in ${duration(Math.round((at - now) / 1000))}`);

export function printNotifyOverview(out: Output, view: NotifyOverview): void {
  const s = out.style;
  const { counts } = view;
  const now = view.checkedAt;
  const scope = view.clinic === '*' ? 'All clinics' : view.clinic;
  const failed = `${counts.failed} dead letter${counts.failed === 1 ? '' : 's'}`;
  out.line(
    `${s.bold(scope)}: ${counts.failed > 0 ? s.red(failed) : failed} · ${counts.delayed} pending · ${counts.waiting} due · ${counts.active} sending · ` +
      `${counts.completed} sent or skipped in the last ${Math.round(view.completedWithinSeconds / 3600)} h`,
  );
  out.line();
  out.line(s.bold('Dead letters') + (view.deadLetters.length > 0 ? s.dim(' (newest first; resend one with `clinic notify retry ID`)') : ''));
  if (view.deadLetters.length === 0) out.line('  none');
  else
    for (const line of table(
      ['FAILED', 'KIND', 'CHANNEL', 'FOR', 'CODE', 'DETAIL', 'TRIES', 'ID'],
      view.deadLetters.map((d) => [
        d.failedAt ? ago(d.failedAt, now) : '?',
        d.kind,
        d.channel ?? '-',
        recipientLabel(d),
        s.red(d.code),
        reasonDetail(d.code, d.reason),
        String(d.attempts),
        d.id,
      ]),
      { headerStyle: s.dim },
    ))
      out.line(`  ${line}`);
  if (counts.failed > view.deadLetters.length) out.line(s.dim(`  … and ${counts.failed - view.deadLetters.length} older (--count N shows more)`));
  out.line();
  out.line(s.bold('Pending') + s.dim(' (soonest first: reminders, notices held by quiet hours, retries after a failure)'));
  if (view.pending.length === 0) out.line('  none');
  else
    for (const line of table(
      ['DUE', 'KIND', 'CHANNEL', 'FOR', 'TRIES', 'LAST ERROR', 'ID'],
      view.pending.map((p) => [
        dueIn(p.sendAt, now),
        p.kind,
        p.channel ?? '-',
        recipientLabel(p),
        String(p.attempts),
        p.lastError ? s.yellow(p.lastError.reason) : '-',
        p.id,
      ]),
      { headerStyle: s.dim },
    ))
      out.line(`  ${line}`);
  if (counts.delayed > view.pending.length) out.line(s.dim(`  … and ${counts.delayed - view.pending.length} later (--count N shows more)`));
}

export function registerNotifyCommands(program: Command, runtime: Runtime): void {
  const notify = program
    .command('notify')
    .summary('notifications: pending, failed and dead-lettered; retry a dead letter')
    .description('patient notifications (reminders, "3 ahead", "1 ahead", "called"): counts, dead letters and pending notices; retry a dead letter');
  examples(notify, ['clinic notify', 'clinic notify --json | jq ".deadLetters[] | {id, code}"', 'clinic notify retry demo.ticket.zpjN1IhahuDK.queue_1_ahead']);

  const list = connectionOptions(notify.command('list', { isDefault: true }))
    .summary('counts, dead letters and pending notices (the default)')
    .description(
      'counts by state, the latest dead letters (with code, reason and attempts) and the next pending notices. ' +
        'Staff see their own clinic; an all-clinics admin token sees every clinic unless a clinic is named. ' +
        'Ids and public facts only: no address, no message text.',
    )
    .option('--count <n>', 'dead letters and pending notices to list (1–100)', '20')
    .addOption(jsonOption());
  examples(list, [
    'clinic notify',
    'clinic notify --clinic demo --count 50',
    'clinic notify --json | jq ".counts"',
    'clinic notify --json | jq -r ".deadLetters[] | select(.code == \\"NOTIFY_CHANNEL_DISABLED\\") | .id"',
  ]);
  handle<{ count: string }>(list, runtime, async ({ out, connection }, options) => {
    const count = Number(options.count);
    if (!Number.isInteger(count) || count < 1 || count > 100) throw new CliError('USAGE', { message: '--count must be a whole number from 1 to 100.' });
    const c = connection();
    const query = new URLSearchParams({ count: String(count), ...(c.clinic ? { clinic: c.clinic } : {}) });
    const view = await hubRequest<NotifyOverview>(c, `/api/notify?${query}`);
    if (out.json) out.data(view);
    else printNotifyOverview(out, view);
  });

  const retry = connectionOptions(notify.command('retry'), { clinic: false })
    .argument('<id>', 'dead letter id, as `clinic notify` lists it')
    .summary('send a dead letter again with a fresh set of attempts')
    .description(
      'send a dead-lettered notification again with a fresh set of attempts (fix the cause first: e.g. configure the channel for NOTIFY_CHANNEL_DISABLED). ' +
        'A notice the provider already accepted is not sent twice.',
    )
    .addOption(jsonOption());
  examples(retry, ['clinic notify retry demo.ticket.zpjN1IhahuDK.queue_1_ahead', 'clinic notify --json | jq -r ".deadLetters[].id" | xargs -n1 clinic notify retry']);
  handle(retry, runtime, async ({ out, connection }, _options, [id]) => {
    await hubRequest<{ ok: true; id: string }>(connection(), `/api/notify/dead-letters/${encodeURIComponent(id!)}/retry`, { method: 'POST' });
    if (out.json) out.data({ action: 'notify-retry', id });
    else out.line(`Retrying ${id}: back in the queue with a fresh set of attempts. \`clinic notify\` shows whether it fails again.`);
  });
}
