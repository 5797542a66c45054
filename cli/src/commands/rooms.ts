import type { Command } from 'commander';
import type { ConsultListing, MediaNodeInfo } from '@clinic-hub/protocol';
import { CliError } from '../cli-error.js';
import { connectionOptions, examples, handle, jsonOption, type Runtime } from '../command-kit.js';
import { requireClinic } from '../connection.js';
import { hubRequest } from '../hub-http.js';
import { ago, duration, table, type Output } from '../output.js';

/** `GET /api/clinics/:clinic/consultations`. */
export interface RoomsView {
  clinic: string;
  checkedAt: number;
  consultations: ConsultListing[];
  mediaNodes: MediaNodeInfo[];
}

export function printRooms(out: Output, view: RoomsView): void {
  const s = out.style;
  const now = view.checkedAt;
  const open = view.consultations.filter((c) => c.status !== 'ended');
  out.line(`${s.bold(view.clinic)}: ${open.length} open consultation room${open.length === 1 ? '' : 's'}, ${view.mediaNodes.length} media node${view.mediaNodes.length === 1 ? '' : 's'}`);
  out.line();
  out.line(s.bold('Consultations') + s.dim(' (open ones and the latest ended, newest first; no names)'));
  if (view.consultations.length === 0) out.line('  none yet: admit a patient of an online department (staff console, or consult:admit)');
  else
    for (const line of table(
      ['ID', 'TICKET', 'DEPT', 'ROOM', 'STATUS', 'NODE', 'PEOPLE', 'STARTED', 'LASTED'],
      view.consultations.map((c) => [
        c.id,
        c.number || c.ticket,
        c.dept,
        c.room,
        c.status === 'ended' ? s.dim('ended') : c.status === 'live' ? s.green('live') : s.yellow(c.status),
        c.node,
        c.participants === null ? '-' : String(c.participants),
        ago(c.createdAt, now),
        duration(Math.round(((c.endedAt ?? now) - c.createdAt) / 1000)),
      ]),
      { headerStyle: s.dim },
    ))
      out.line(`  ${line}`);
  out.line();
  out.line(s.bold('Media nodes') + s.dim(' (alive now; new rooms go to the one with the fewest rooms that is not draining)'));
  if (view.mediaNodes.length === 0) out.line(`  ${s.red('none')}: admission answers MEDIA_NODE_UNAVAILABLE until a media-server runs`);
  else
    for (const line of table(
      ['NODE', 'STATE', 'ROOMS', 'PEOPLE', 'UP', 'URL'],
      view.mediaNodes.map((n) => [
        n.id,
        n.draining ? s.yellow('draining') : s.green('serving'),
        String(n.rooms),
        String(n.participants),
        n.startedAt > 0 ? duration(Math.round((now - n.startedAt) / 1000)) : '?',
        n.url,
      ]),
      { headerStyle: s.dim },
    ))
      out.line(`  ${line}`);
}

export function registerRoomsCommand(program: Command, runtime: Runtime): void {
  const rooms = connectionOptions(program.command('rooms'))
    .summary('video consultation rooms: open and recent, and the media-server nodes')
    .description(
      'video consultations of the clinic: the open ones and the latest ended, with their ticket number, department, room, status, ' +
        'media-server node and how many people are in the room (as the media-server reports it); and the live media-server nodes. No names.',
    )
    .option('--count <n>', 'ended consultations to list besides the open ones (1–200)', '20')
    .addOption(jsonOption());
  examples(rooms, ['clinic rooms', 'clinic rooms --count 100', 'clinic rooms --json | jq "[.consultations[] | select(.status != \\"ended\\")] | length"']);
  handle<{ count: string }>(rooms, runtime, async ({ out, connection }, options) => {
    const count = Number(options.count);
    if (!Number.isInteger(count) || count < 1 || count > 200) throw new CliError('USAGE', { message: '--count must be a whole number from 1 to 200.' });
    const c = connection();
    const clinic = requireClinic(c);
    const view = await hubRequest<RoomsView>(c, `/api/clinics/${encodeURIComponent(clinic)}/consultations?count=${count}`);
    if (out.json) out.data(view);
    else printRooms(out, view);
  });
}
