import { Box, useApp, useInput, type Key } from 'ink';
import { useState, useSyncExternalStore } from 'react';
import type { CliError } from '../cli-error.js';
import { describeAdmission, describeEvent } from '../describe.js';
import { redisSummary, rolesSummary } from '../commands/status.js';
import { ago, bytes, clockTime, padEnd, truncate } from '../output.js';
import { firstFreeRoom } from '../queue-model.js';
import type { LiveQueue } from './live-queue.js';
import type { LiveStatus } from './live-status.js';
import { KeyLine, Line, useNow, useScreenSize, type ScreenSize } from './screen.js';

export interface StatusAppProps {
  status: LiveStatus;
  /** The followed clinic's queue, when the connection acts for one. */
  live: LiveQueue | null;
  url: string;
  color: boolean;
  size?: ScreenSize;
}

const KEYS: [string, string][] = [
  ['↑↓', 'dept'],
  ['n', 'call next'],
  ['g', 'refresh'],
  ['?', 'help'],
  ['q', 'quit'],
];

const HELP_LINES = [
  'Keys',
  '  ↑ ↓  (k j)  select a department of the followed clinic',
  '  n           call its next waiting ticket to its first free room',
  '  g           refresh nodes and Redis now',
  '  ?           this help (any key closes it)',
  '  q  Ctrl-C   quit',
  '',
  'Nodes and Redis refresh every few seconds (hub nodes report every 5 s).',
  'The followed clinic (●) follows the queue’s events as they happen.',
  'For tickets, rooms and the other actions: clinic queue --watch',
];

type ScreenLine = { text: string; bold?: boolean; dim?: boolean; color?: string | undefined; inverse?: boolean };

const cells = (values: string[], widths: number[]) => values.map((v, i) => padEnd(truncate(v, widths[i]!), widths[i]!)).join(' ');

/** `clinic status --watch`: hub nodes, clients, Redis and queues, in one 80×24 screen. */
export function StatusApp({ status, live, url, color, size: fixedSize }: StatusAppProps) {
  useSyncExternalStore(status.subscribe, status.getVersion);
  useSyncExternalStore(live?.subscribe ?? noSubscribe, live?.getVersion ?? zero);
  const { exit } = useApp();
  const size = useScreenSize(fixedSize);
  const now = useNow(1_000);
  const [selected, setSelected] = useState(0);
  const [help, setHelp] = useState(false);
  const [message, setMessage] = useState<{ text: string; error: boolean } | null>(null);
  const [busy, setBusy] = useState(false);

  const report = status.report;
  const view = live?.view() ?? null;
  const departments = view?.departments ?? [];
  const dept = departments[Math.min(selected, departments.length - 1)];

  const onKey = (input: string, key: Key) => {
    if (help) return setHelp(false);
    if (input === 'q') return exit();
    if (input === '?') return setHelp(true);
    if (input === 'g') return void status.refresh();
    if (key.upArrow || input === 'k') return setSelected((i) => Math.max(0, i - 1));
    if (key.downArrow || input === 'j') return setSelected((i) => Math.min(departments.length - 1, i + 1));
    if (input === 'n' && dept && live && !busy) {
      const room = firstFreeRoom(dept);
      if (!room) return setMessage({ text: `No free room in ${dept.id}: use clinic queue --watch to choose one.`, error: true });
      setBusy(true);
      live.callNext(dept.id, room).then(
        (result) => setMessage({ text: result.kind === 'called' ? describeEvent(result.event) : describeAdmission(result.admission, null, { link: false }), error: false }),
        (error: CliError) => setMessage({ text: `${error.code}: ${error.message}`, error: true }),
      ).finally(() => setBusy(false));
    }
  };
  useInput((input, key) => {
    // Keys that arrive together (a paste, a slow link) come as one string: take them one by one.
    if (input.length > 1 && !key.ctrl && !key.meta) for (const char of input) onKey(char, key);
    else onKey(input, key);
  });

  const width = size.columns;
  const tint = (c: string) => (color ? c : undefined);
  const lines: ScreenLine[] = [];
  const nodes = report?.nodes ?? [];
  const up = nodes.filter((n) => n.up).length;
  const link = live ? (live.link === 'live' ? ' · ● live' : live.link === 'reconnecting' ? ' · ○ reconnecting…' : ' · × offline') : '';
  const clock = clockTime(now);
  const head = `Clinic Hub status · ${url}${link} · refreshed ${report ? ago(report.checkedAt, now) : 'never'}`;
  lines.push({ text: `${padEnd(truncate(head, width - clock.length - 1), width - clock.length)}${clock}`, bold: true });

  const budget = size.rows - 1 - 14;
  const nodeRows = Math.min(nodes.length, Math.max(1, Math.min(4, Math.floor(budget / 3))));
  const clinics = report?.clinics ?? [];
  const clinicRows = Math.min(clinics.length, Math.max(1, Math.min(4, Math.floor(budget / 3))));
  const deptRows = Math.max(1, budget - Math.max(1, nodeRows) - Math.max(1, clinicRows));

  lines.push({ text: `Nodes: ${up} up${nodes.length - up ? `, ${nodes.length - up} down` : ''}`, bold: true });
  const nodeWidths = [14, 5, 6, 28, 10, 9];
  lines.push({ text: `  ${cells(['NODE', 'STATE', 'SERVER', 'CLIENTS', 'RSS', 'LAST SEEN'], nodeWidths)}`, dim: true });
  if (nodes.length === 0) lines.push({ text: '  no node has reported', dim: true });
  for (const n of nodes.slice(0, nodes.length > nodeRows ? nodeRows - 1 : nodeRows)) {
    lines.push({
      text: `  ${cells([n.nodeId, n.up ? 'up' : 'DOWN', n.server, rolesSummary(n.clients), bytes(n.rssBytes), ago(n.lastSeen, now)], nodeWidths)}`,
      color: n.up ? undefined : tint('red'),
    });
  }
  if (nodes.length > nodeRows) lines.push({ text: `  … ${nodes.length - nodeRows + 1} more (clinic status)`, dim: true });
  lines.push({ text: `Clients: ${report ? rolesSummary(report.clientsByRole) : '?'}` });
  // On a Redis Cluster the summary counts the shards with a replica in sync; `clinic status` says which and why.
  const redisTrouble = report && (!report.redis.up || (report.redis.warnings?.length ?? 0) > 0);
  lines.push({ text: `Redis: ${report ? redisSummary(report.redis) : '?'}`, color: redisTrouble ? tint('red') : undefined });
  lines.push({ text: '' });

  lines.push({ text: 'Queues', bold: true });
  const clinicWidths = [18, 7, 8, 7, 10];
  lines.push({ text: `  ${cells(['CLINIC', 'SEQ', 'WAITING', 'CALLED', 'IN CONSULT'], clinicWidths)}`, dim: true });
  if (clinics.length === 0) lines.push({ text: '  none visible', dim: true });
  for (const c of clinics.slice(0, clinics.length > clinicRows ? clinicRows - 1 : clinicRows)) {
    const followed = view && view.clinic.id === c.id;
    const values = followed
      ? [`${c.id} ●`, String(view.seq), String(departments.reduce((n, d) => n + d.waiting, 0)), String(departments.reduce((n, d) => n + d.called, 0)), String(departments.reduce((n, d) => n + d.inConsultation, 0))]
      : [c.id, String(c.seq), String(Object.values(c.waiting).reduce((a, b) => a + b, 0)), String(c.called), String(c.inConsultation)];
    lines.push({ text: `  ${cells(values, clinicWidths)}` });
  }
  if (clinics.length > clinicRows) lines.push({ text: `  … ${clinics.length - clinicRows + 1} more`, dim: true });
  lines.push({ text: '' });

  if (view) {
    lines.push({ text: `${view.clinic.id} by department (live)`, bold: true });
    const deptWidths = [20, 8, 7, 8, 6, 20];
    lines.push({ text: `  ${cells(['DEPT', 'WAITING', 'CALLED', 'CONSULT', 'WAIT', 'FREE ROOMS'], deptWidths)}`, dim: true });
    const first = Math.max(0, Math.min(selected - deptRows + 1, departments.length - deptRows));
    for (const d of departments.slice(first, first + deptRows)) {
      const isSelected = d.id === dept?.id;
      const free = d.rooms.filter((r) => !r.ticket).map((r) => r.id);
      lines.push({
        text: `${isSelected ? '>' : ' '} ${cells([`${d.id} ${d.name.ja}`, String(d.waiting), String(d.called), String(d.inConsultation), `~${d.typicalWaitMinutes}m`, free.join(' ') || '-'], deptWidths)}`,
        inverse: isSelected,
      });
    }
  } else {
    lines.push({ text: 'No clinic followed live: pass --clinic ID to follow one.', dim: true });
  }

  const problem = status.problem ?? live?.problem ?? null;
  const bottom = message ?? (problem ? { text: `${problem.code}: ${problem.message}`, error: true } : null);
  const body: ScreenLine[] = help ? [lines[0]!, ...HELP_LINES.map((text) => ({ text }))] : lines;
  const height = size.rows - 3;
  while (body.length < height) body.push({ text: '' });

  return (
    <Box flexDirection="column" width={width}>
      {body.slice(0, height).map((l, i) => (
        <Line key={i} text={l.text} width={width} bold={l.bold ?? false} dim={l.dim ?? false} color={l.color} inverse={l.inverse ?? false} />
      ))}
      <Line text={bottom?.text ?? ''} width={width} color={bottom?.error ? tint('red') : undefined} />
      <KeyLine keys={busy ? [['…', 'working']] : KEYS} width={width} />
    </Box>
  );
}

const noSubscribe = () => () => undefined;
const zero = () => 0;
