import { Option, type Command } from 'commander';
import type { QueueSnapshot } from '@clinic-hub/protocol';
import { CliError } from '../cli-error.js';
import { connectionOptions, examples, handle, jsonOption, type Runtime } from '../command-kit.js';
import { requireClinic, type Connection } from '../connection.js';
import { callNextPatient } from '../consult-client.js';
import { describeAdmission, describeEvent } from '../describe.js';
import { STATUS_LABEL, bilingual } from '../output.js';
import { connectQueueSocket, emitterOf, fetchSnapshot, sendAction, sendOnce, type Emit, type QueueActionEvent } from '../queue-client.js';
import { followerFromSnapshot, resolveTicket } from '../queue-model.js';

async function withQueue<T>(connection: Connection, run: (emit: Emit) => Promise<T>): Promise<T> {
  requireClinic(connection);
  const socket = await connectQueueSocket(connection);
  try {
    return await run(emitterOf(socket));
  } finally {
    socket.close();
  }
}

const TICKET_ACTIONS: { name: string; event: QueueActionEvent; needs: string; summary: string; description: string; example: string }[] = [
  { name: 'recall', summary: 'call a called ticket again', needs: 'called', event: 'queue:recall', description: 'call a called ticket again (after noShowAfterRecalls recalls it becomes a no-show)', example: 'clinic recall A-012' },
  { name: 'start', summary: 'mark a called ticket as in consultation', needs: 'called', event: 'queue:start', description: 'mark a called ticket as in consultation (starts the measured duration)', example: 'clinic start A-012' },
  { name: 'skip', summary: 'put a called ticket back in line', needs: 'called', event: 'queue:skip', description: 'put a called ticket back in line, behind those waiting now', example: 'clinic skip A-012' },
  { name: 'done', summary: 'finish a ticket', needs: 'called or in-consultation', event: 'queue:done', description: 'finish a called or in-consultation ticket', example: 'clinic done A-012 --json' },
  { name: 'cancel', summary: 'cancel a waiting or called ticket', needs: 'waiting or called', event: 'queue:cancel', description: 'cancel a waiting or called ticket', example: 'clinic cancel B-003' },
];

export function registerActionCommands(program: Command, runtime: Runtime): void {
  const checkin = connectionOptions(program.command('checkin'))
    .summary('issue a ticket; prints its number and the patient page URL')
    .description('check a patient in: issues a ticket and prints its number and the patient page URL')
    .requiredOption('--dept <id>', 'department')
    .option('--urgent', 'urgent tickets are called first')
    .option('--name <name>', 'patient name (kept apart from the queue, never shown on displays)')
    .option('--phone <phone>', 'patient phone number (with --name)')
    .option('--note <note>', 'note for staff (with --name)')
    .addOption(jsonOption());
  examples(checkin, ['clinic checkin --dept internal', 'clinic checkin --dept pediatrics --urgent --name "山田 花子"', 'clinic checkin --dept online --json | jq -r .patientUrl']);
  handle<{ dept: string; urgent?: boolean; name?: string; phone?: string; note?: string }>(checkin, runtime, async ({ out, connection }, options) => {
    if ((options.phone || options.note) && !options.name) throw new CliError('USAGE', { message: '--phone and --note go with --name.' });
    const patient = options.name ? { name: options.name, ...(options.phone ? { phone: options.phone } : {}), ...(options.note ? { note: options.note } : {}) } : undefined;
    const result = await withQueue(connection(), async (emit) => {
      const ack = await sendAction(emit, 'queue:checkin', { dept: options.dept, priority: options.urgent ? 'urgent' : 'normal', ...(patient ? { patient } : {}) });
      const follower = await followerFromSnapshot(await fetchSnapshot(emit));
      return { ack, position: follower.positionOf(ack.event.ticket.id), dept: follower.clinic?.departments.find((d) => d.id === options.dept) };
    });
    const { ack, position } = result;
    const ticket = ack.event.ticket;
    if (out.json) {
      out.data({ action: 'checkin', replayed: ack.replayed, ticket, event: ack.event, ahead: position?.ahead ?? null, waitMinutes: position?.waitMinutes ?? null, patientUrl: ack.patientUrl });
      return;
    }
    const s = out.style;
    const wait = position ? ` · ${position.ahead} ahead · about ${position.waitMinutes} min` : '';
    out.line(`${s.bold(ticket.number)} · ${result.dept ? bilingual(result.dept.name) : ticket.dept}${ticket.priority === 'urgent' ? ` · ${s.red('urgent')}` : ''}${wait}`);
    out.line(`Patient page: ${ack.patientUrl}`);
  });

  const callNext = connectionOptions(program.command('call-next'))
    .summary('call the next waiting ticket to a room (in an online department, admit to video)')
    .description(
      'call the next waiting ticket of a department to a room (a room whose patient is in consultation is finished first); ' +
        'in an online department the next patient is admitted to video instead: their consultation opens and their page shows the join button',
    )
    .requiredOption('--dept <id>', 'department')
    .requiredOption('--room <id>', 'room of that department')
    .addOption(jsonOption());
  examples(callNext, [
    'clinic call-next --dept internal --room room1',
    'clinic call-next --dept online --room video1',
    'clinic call-next --dept internal --room room1 --json | jq -r .ticket.number',
  ]);
  handle<{ dept: string; room: string }>(callNext, runtime, async ({ out, connection }, options) => {
    const c = connection();
    const { result, snapshot } = await withQueue(c, async (emit) => {
      const result = await callNextPatient(emit, c, options.dept, options.room);
      return { result, snapshot: out.json ? null : await fetchSnapshot(emit) };
    });
    if (result.kind === 'admitted') {
      const { admission } = result;
      if (out.json) {
        out.data({
          action: 'admit',
          replayed: admission.replayed,
          ticket: admission.event.ticket,
          event: admission.event,
          consultation: admission.consultation,
          joinUrl: admission.pass.pageUrl,
          joinUrlExpiresAt: admission.pass.expiresAt,
        });
      } else out.line(describeAdmission(admission, snapshot));
      return;
    }
    if (out.json) out.data({ action: 'call-next', replayed: result.replayed, ticket: result.event.ticket, event: result.event });
    else out.line(describeEvent(result.event, snapshot));
  });

  for (const action of TICKET_ACTIONS) {
    const command = connectionOptions(program.command(action.name))
      .argument('<ticket>', 'ticket number (A-012, a12) or ticket id')
      .summary(action.summary)
      .description(action.description)
      .addOption(jsonOption());
    examples(command, [action.example, `clinic ${action.name} zpjN1IhahuDK --json`]);
    handle(command, runtime, async ({ out, connection }, _options, [reference]) => {
      const { ack, snapshot } = await withQueue(connection(), async (emit) => {
        const snapshot = await fetchSnapshot(emit);
        const ticket = resolveTicket(snapshot.tickets, reference!);
        try {
          return { ack: await sendAction(emit, action.event, { ticketId: ticket.id }), snapshot };
        } catch (error) {
          if (error instanceof CliError && error.code === 'QUEUE_INVALID_TRANSITION') {
            throw new CliError(error.code, { detail: `${ticket.number} is ${STATUS_LABEL[ticket.status]}; ${action.name} needs a ${action.needs} ticket` });
          }
          throw error;
        }
      });
      if (out.json) out.data({ action: action.name, replayed: ack.replayed, ticket: ack.event.ticket, event: ack.event });
      else out.line(`${describeEvent(ack.event, snapshot)}${ack.replayed ? ' (already done: replayed)' : ''}`);
    });
  }

  const broadcast = connectionOptions(program.command('broadcast'))
    .summary('announce on every display of the clinic (ja + en)')
    .description('show an announcement on every display of the clinic (Japanese and English)')
    .requiredOption('--ja <text>', 'Japanese text')
    .requiredOption('--en <text>', 'English text')
    .addOption(new Option('--seconds <n>', 'how long displays show it (3–600)').default('20'))
    .addOption(jsonOption());
  examples(broadcast, ['clinic broadcast --ja "本日の受付は17時までです" --en "Reception closes at 17:00 today"', 'clinic broadcast --ja "まもなく再開します" --en "Resuming shortly" --seconds 60']);
  handle<{ ja: string; en: string; seconds: string }>(broadcast, runtime, async ({ out, connection }, options) => {
    const seconds = Number(options.seconds);
    if (!Number.isInteger(seconds) || seconds < 3 || seconds > 600) throw new CliError('USAGE', { message: '--seconds must be a whole number from 3 to 600.' });
    const c = connection();
    const { announcement } = await withQueue(c, (emit) => sendOnce(emit, 'queue:announce', { text: { ja: options.ja, en: options.en }, durationSeconds: seconds }));
    if (out.json) out.data({ action: 'broadcast', clinic: c.clinic, announcement });
    else out.line(`Announced on the displays of ${c.clinic} for ${announcement.durationSeconds} s.`);
  });
}
