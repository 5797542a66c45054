import type { Command } from 'commander';
import { connectionOptions, examples, handle, jsonOption, type Runtime } from '../command-kit.js';
import { requireClinic } from '../connection.js';
import { hubRequest } from '../hub-http.js';
import type { DisplayPresence } from '@clinic-hub/protocol';
import { ago, table } from '../output.js';

export function registerDisplaysCommand(program: Command, runtime: Runtime): void {
  const displays = connectionOptions(program.command('displays'))
    .summary('connected waiting-room screens, and screens that left')
    .description('waiting-room screens: connected ones with their hub node, and screens that left with when they were last seen')
    .addOption(jsonOption());
  examples(displays, ['clinic displays', 'clinic displays --json | jq "[.displays[] | select(.online)] | length"']);
  handle(displays, runtime, async ({ out, connection }) => {
    const c = connection();
    const clinic = requireClinic(c);
    const { displays: list } = await hubRequest<{ displays: DisplayPresence[] }>(c, `/api/clinics/${encodeURIComponent(clinic)}/displays`);
    if (out.json) {
      out.data({ clinic, checkedAt: Date.now(), displays: list });
      return;
    }
    const s = out.style;
    const online = list.filter((d) => d.online);
    out.line(`${s.bold(clinic)}: ${online.length} screen${online.length === 1 ? '' : 's'} connected, ${list.length - online.length} gone`);
    if (list.length === 0) {
      out.line(s.dim('No screen has connected yet. Open /display#token=… with a display token (`clinic token issue --role display`).'));
      return;
    }
    const now = Date.now();
    for (const line of table(
      ['SCREEN', 'STATE', 'NODE', 'ADDRESS', 'CONNECTED', 'LAST SEEN'],
      list.map((d) => [d.sub, d.online ? s.green('online') : s.dim('gone'), d.node, d.address, ago(d.connectedAt, now), ago(d.lastSeen, now)]),
      { headerStyle: s.dim },
    ))
      out.line(line);
  });
}
