import { Box, useApp, useInput, type Key } from 'ink';
import { useRef, useState, useSyncExternalStore } from 'react';
import type { CliError } from '../cli-error.js';
import { describeAdmission, describeEvent, ticketSince } from '../describe.js';
import { STATUS_LABEL, bilingual, clockTime, displayWidth, padEnd, truncate, wrapText } from '../output.js';
import { firstFreeRoom, type DepartmentView, type TicketRow } from '../queue-model.js';
import type { LiveQueue } from './live-queue.js';
import { KeyLine, Line, useNow, useScreenSize, type ScreenSize } from './screen.js';

export interface QueueAppProps {
  live: LiveQueue;
  /** Department shown first (else the first one). */
  dept?: string;
  color: boolean;
  /** Fixed size for tests; else the terminal's. */
  size?: ScreenSize;
}

type TicketAction = 'recall' | 'start' | 'skip' | 'done' | 'cancel';
type Message = { text: string; error: boolean; at: number } | null;

/** How long the result of a key press stays on the message lines. */
const MESSAGE_MS = 10_000;
/** A message longer than the screen is wide wraps onto this many lines at most. */
const MESSAGE_LINES = 3;

export const QUEUE_KEYS: [string, string][] = [
  ['n', 'next'],
  ['r', 'recall'],
  ['t', 'start'],
  ['s', 'skip'],
  ['d', 'done'],
  ['c', 'cancel'],
  ['o', 'room'],
  ['←→', 'dept'],
  ['?', 'help'],
  ['q', 'quit'],
];

const HELP_LINES = [
  'Keys',
  '  ↑ ↓  (k j)     select a ticket',
  '  ← →  (h l)     switch department (also tab; 1–9 jump to one)',
  '  n              call the next waiting ticket to the chosen room (online: admit to video)',
  '  o              choose that room: auto (first free room) or each room in turn',
  '                 (calling into a room whose patient is in consultation finishes them)',
  '  r              recall the selected called ticket (too many recalls: no-show)',
  '  t              start: the selected called ticket is in consultation',
  '  s              skip: the selected called ticket goes back in line',
  '  d              done: finish the selected ticket',
  '  c              cancel the selected ticket (asks y to confirm)',
  '  ?              this help (any key closes it)',
  '  q  Ctrl-C      quit',
  '',
  'The screen follows the hub’s events as they happen (no polling): calls made',
  'anywhere show up here at once, and it catches up by itself after a reconnect.',
];

/** The department tabs, starting far enough right that the selected one is on screen. */
function departmentTabs(departments: DepartmentView[], selected: number, width: number): string {
  const tab = (d: DepartmentView, i: number) => (i === selected ? `[${d.id} ${d.name.ja} ${d.waiting}]` : ` ${d.id} ${d.name.ja} ${d.waiting} `);
  let start = 0;
  while (start < selected && displayWidth(`‹ ${departments.slice(start, selected + 1).map((d, i) => tab(d, start + i)).join(' ')}`) > width) start++;
  return `${start > 0 ? '‹ ' : ''}${departments.slice(start).map((d, i) => tab(d, start + i)).join(' ')}`;
}

const errorText = (error: CliError) => `${error.code}: ${error.message}${error.detail ? ` (${error.detail})` : ''}${error.hint ? ` — ${error.hint}` : ''}`;

/** What the view remembers between key presses; everything else comes from the live queue. */
interface QueueUi {
  deptId: string | null;
  selectedId: string | null;
  /** Room for "n": null is the first free room. */
  roomChoice: string | null;
  message: Message;
  confirmCancel: TicketRow | null;
  help: boolean;
}

const INITIAL_UI: QueueUi = { deptId: null, selectedId: null, roomChoice: null, message: null, confirmCancel: null, help: false };
const NO_KEY = { upArrow: false, downArrow: false, leftArrow: false, rightArrow: false, tab: false, shift: false, ctrl: false, meta: false } as Key;

function derive(ui: QueueUi, departments: DepartmentView[]) {
  const deptIndex = Math.max(0, departments.findIndex((d) => d.id === ui.deptId));
  const dept: DepartmentView | undefined = departments[deptIndex];
  const tickets = dept?.tickets ?? [];
  const selectedIndex = Math.max(0, tickets.findIndex((t) => t.id === ui.selectedId));
  const selected = tickets[selectedIndex];
  const targetRoom = dept ? (ui.roomChoice && dept.rooms.some((r) => r.id === ui.roomChoice) ? ui.roomChoice : firstFreeRoom(dept)) : null;
  return { deptIndex, dept, tickets, selectedIndex, selected, targetRoom };
}

/** One key press: the next UI state, and the hub action it asks for, if any. */
function onKey(ui: QueueUi, input: string, key: Key, departments: DepartmentView[], live: LiveQueue): { ui: QueueUi; act?: () => Promise<string>; quit?: boolean } {
  const { deptIndex, dept, tickets, selectedIndex, selected, targetRoom } = derive(ui, departments);
  const say = (text: string, error = false) => ({ ui: { ...ui, message: { text, error, at: Date.now() } } });
  const ticketAction = (action: TicketAction) => {
    if (!selected) return say(`Nothing selected: nobody is in line in ${dept?.id ?? 'this department'}.`, true);
    const ticket = selected;
    return { ui, act: async () => describeEvent(await live.ticketAction(action, ticket.id)) };
  };
  const switchDept = (index: number) => {
    const next = departments[(index + departments.length) % departments.length];
    return next ? { ui: { ...ui, deptId: next.id, selectedId: null, roomChoice: null } } : { ui };
  };

  if (ui.help) return { ui: { ...ui, help: false } };
  if (ui.confirmCancel) {
    const ticket = ui.confirmCancel;
    const cleared = { ...ui, confirmCancel: null };
    if (input === 'y' || input === 'Y') return { ui: cleared, act: async () => describeEvent(await live.ticketAction('cancel', ticket.id)) };
    return { ui: { ...cleared, message: { text: `Kept ${ticket.number}.`, error: false, at: Date.now() } } };
  }
  if (input === 'q') return { ui, quit: true };
  if (input === '?') return { ui: { ...ui, help: true } };
  if (key.upArrow || input === 'k') return { ui: { ...ui, selectedId: tickets[Math.max(0, selectedIndex - 1)]?.id ?? null } };
  if (key.downArrow || input === 'j') return { ui: { ...ui, selectedId: tickets[Math.min(tickets.length - 1, selectedIndex + 1)]?.id ?? null } };
  if (key.leftArrow || input === 'h' || (key.tab && key.shift)) return switchDept(deptIndex - 1);
  if (key.rightArrow || input === 'l' || key.tab) return switchDept(deptIndex + 1);
  if (/^[1-9]$/.test(input) && departments[Number(input) - 1]) return switchDept(Number(input) - 1);
  if (input === 'o' && dept) {
    const ids = [null, ...dept.rooms.map((r) => r.id)];
    const roomChoice = ids[(ids.indexOf(ui.roomChoice) + 1) % ids.length] ?? null;
    const text = roomChoice ? `Next calls go to ${roomChoice}.` : 'Next calls go to the first free room.';
    return { ui: { ...ui, roomChoice, message: { text, error: false, at: Date.now() } } };
  }
  if (input === 'n' && dept) {
    if (!targetRoom) return say(`Every room of ${dept.id} has a patient: press o to choose one (one in consultation is finished by the call).`, true);
    const deptId = dept.id;
    return {
      ui,
      act: async () => {
        const result = await live.callNext(deptId, targetRoom);
        return result.kind === 'called' ? describeEvent(result.event) : describeAdmission(result.admission, null, { link: false });
      },
    };
  }
  if (input === 'r') return ticketAction('recall');
  if (input === 't') return ticketAction('start');
  if (input === 's') return ticketAction('skip');
  if (input === 'd') return ticketAction('done');
  if (input === 'c') {
    if (!selected) return ticketAction('cancel');
    return { ui: { ...ui, confirmCancel: selected } };
  }
  return { ui };
}

/** `clinic queue --watch`: the waiting room of one clinic, live, one department at a time. */
export function QueueApp({ live, dept: initialDept, color, size: fixedSize }: QueueAppProps) {
  useSyncExternalStore(live.subscribe, live.getVersion);
  const { exit } = useApp();
  const size = useScreenSize(fixedSize);
  const now = useNow(5_000);
  const view = live.view();
  const departments = view?.departments ?? [];

  const [ui, setUi] = useState<QueueUi>(() => ({ ...INITIAL_UI, deptId: initialDept ?? null }));
  const [busy, setBusy] = useState(false);
  // Two key events can arrive before React renders again: each must see the state the previous one left.
  const latest = useRef(ui);
  latest.current = ui;
  const { dept, tickets, selectedIndex, selected, targetRoom, deptIndex } = derive(ui, departments);
  const { roomChoice, help, confirmCancel } = ui;

  useInput((input, key) => {
    // A paste, or keys that arrive together over a slow link, come as one string: take them one by one.
    const keys = input.length > 1 && !key.ctrl && !key.meta ? [...input].map((c) => ({ input: c, key: NO_KEY })) : [{ input, key }];
    let next = latest.current;
    const actions: (() => Promise<string>)[] = [];
    for (const k of keys) {
      const result = onKey(next, k.input, k.key, departments, live);
      next = result.ui;
      if (result.quit) return exit();
      if (result.act) actions.push(result.act);
    }
    if (actions.length > 0 && busy) next = { ...next, message: { text: 'Still working on the last action…', error: true, at: Date.now() } };
    latest.current = next;
    setUi(next);
    if (actions.length === 0 || busy) return;
    setBusy(true);
    (async () => {
      let text = '';
      for (const act of actions) text = await act();
      return text;
    })()
      .then(
        (text) => setUi((current) => ({ ...current, message: { text, error: false, at: Date.now() } })),
        (error: CliError) => setUi((current) => ({ ...current, message: { text: errorText(error), error: true, at: Date.now() } })),
      )
      .finally(() => setBusy(false));
  });

  const width = size.columns;
  const problem = live.problem ? { text: errorText(live.problem), error: true } : null;
  const announcement = live.announcement && now - live.announcement.at < live.announcement.durationSeconds * 1000 ? live.announcement : null;
  const prompt = confirmCancel ? { text: `Cancel ${confirmCancel.number}? y to confirm, any other key keeps it.`, error: false } : null;
  const message = ui.message && Date.now() - ui.message.at < MESSAGE_MS ? ui.message : null;
  const status = prompt ?? message ?? problem ?? (announcement ? { text: `Announcement: ${announcement.text.ja} / ${announcement.text.en}`, error: false } : null);
  const lastEvent = live.lastEvent ? `Last: ${describeEvent(live.lastEvent)} at ${clockTime(live.lastEvent.at, view?.clinic.timezone)}` : '';
  // Messages are shown whole: wrapped over up to MESSAGE_LINES lines (the list gives up the room), cut with … beyond.
  const messageLines = wrapText(status?.text ?? lastEvent, width, MESSAGE_LINES);
  // Header 5 lines, message lines and the key line, and one spare so the screen never scrolls.
  const listHeight = Math.max(3, size.rows - 7 - messageLines.length);
  // When the line is longer than the screen, the last row says how many more there are.
  const capacity = tickets.length > listHeight ? listHeight - 1 : listHeight;
  const scroll = useRef(0);
  if (selectedIndex < scroll.current) scroll.current = selectedIndex;
  if (selectedIndex >= scroll.current + capacity) scroll.current = selectedIndex - capacity + 1;
  scroll.current = Math.max(0, Math.min(scroll.current, tickets.length - capacity));
  const visible = tickets.slice(scroll.current, scroll.current + capacity);
  const hidden = tickets.length - visible.length;
  const tint = (c: string) => (color ? c : undefined);

  const link = live.link === 'live' ? '● live' : live.link === 'reconnecting' ? '○ reconnecting…' : '× offline';
  const clock = clockTime(now, view?.clinic.timezone);
  // The connection state and seq are always shown: a long clinic name gives way instead.
  const headerTail = ` · ${link} · seq ${view?.seq ?? '-'}`;
  const clinicName = truncate(view ? bilingual(view.clinic.name) : live.connection.clinic ?? '', Math.max(4, width - clock.length - 1 - displayWidth(`Clinic Hub · ${headerTail}`)));
  const header = `Clinic Hub · ${clinicName}${headerTail}`;
  const tabs = departmentTabs(departments, deptIndex, width);
  const summaryTail = dept
    ? `: ${dept.waiting} waiting · wait ~${dept.typicalWaitMinutes} min · avg ${dept.avgConsultMinutes} min · next → ${targetRoom ?? 'no free room'}${roomChoice ? '' : ' (auto)'}`
    : '';
  const summary = dept ? `${truncate(bilingual(dept.name), Math.max(4, width - displayWidth(summaryTail)))}${summaryTail}` : 'no department';
  const rooms = dept ? `Rooms: ${dept.rooms.map((r) => `${r.id} ${r.ticket ? `${r.ticket.number} ${STATUS_LABEL[r.ticket.status]}` : 'free'}`).join(' · ')}` : '';
  const column = (t: TicketRow) =>
    [
      padEnd(t.number, 7),
      padEnd(t.priority === 'urgent' ? 'urgent' : '', 6),
      padEnd(STATUS_LABEL[t.status] ?? t.status, 10),
      padEnd(truncate(t.room ?? '', 8), 8),
      padEnd(t.ahead === null ? '' : String(t.ahead), 5),
      padEnd(t.waitMinutes === null ? '' : `~${t.waitMinutes}m`, 6),
      ticketSince(t, now),
    ].join(' ');
  const rowColor = (t: TicketRow) => (t.status === 'called' ? 'yellow' : t.status === 'in_consultation' ? 'cyan' : t.priority === 'urgent' ? 'red' : undefined);

  return (
    <Box flexDirection="column" width={width}>
      <Line text={`${padEnd(truncate(header, width - clock.length - 1), width - clock.length)}${clock}`} width={width} bold />
      <Line text={tabs} width={width} />
      <Line text={summary} width={width} />
      <Line text={rooms} width={width} dim />
      {help ? (
        Array.from({ length: listHeight + 1 }, (_, i) => <Line key={i} text={HELP_LINES[i] ?? ''} width={width} />)
      ) : (
        <>
          <Line text={`  ${['NUMBER ', 'PRI   ', 'STATUS    ', 'ROOM    ', 'AHEAD', 'WAIT  ', 'SINCE'].join(' ')}`} width={width} dim />
          {visible.length === 0 ? <Line text="  nobody in line" width={width} dim /> : null}
          {visible.map((t) => {
            const isSelected = t.id === selected?.id;
            return <Line key={t.id} text={`${isSelected ? '>' : ' '} ${column(t)}`} width={width} inverse={isSelected} color={isSelected ? undefined : tint(rowColor(t) ?? '')} />;
          })}
          {Array.from({ length: Math.max(0, capacity - Math.max(1, visible.length)) }, (_, i) => (
            <Line key={`pad-${i}`} text="" width={width} />
          ))}
          {hidden > 0 ? <Line text={`  … ${hidden} more: ${scroll.current} above, ${hidden - scroll.current} below (↑↓ scrolls)`} width={width} dim /> : null}
        </>
      )}
      {messageLines.map((text, i) => (
        <Line key={`message-${i}`} text={text} width={width} color={status?.error ? tint('red') : undefined} bold={status?.error ?? false} />
      ))}
      <KeyLine keys={busy ? [['…', 'working']] : QUEUE_KEYS} width={width} />
    </Box>
  );
}
