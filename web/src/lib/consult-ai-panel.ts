/**
 * The clinician's AI panel on the consultation page: the live transcript
 * (partials replaced by later partials and by the final of the same
 * utterance, a final replacing an earlier final of the same speaker whose
 * time it overlaps, each line with the speaker's role and the time) and a small
 * emotion trend per speaker (a sparkline of the stress index and the top
 * label of their last utterance).
 *
 * Only a page opened with a clinician's hub token (`#…&hub=<token>`, which
 * the staff console adds) follows the results, on the hub's `/consult`
 * namespace; a patient's, family's or interpreter's page has no hub token and
 * never connects. The panel shows once the hub has accepted the
 * subscription; the finals so far come from the hub's AI history (audited
 * there). Text from the network only ever goes in as text nodes, and nothing
 * here is logged.
 */
import { CONSULT_EVENT_ROLES, type AiEmotion, type AiResultMessage, type AiTranscript, type ConsultRole, type ProtocolError } from '@clinic-hub/protocol';
import { aiStatusText, watchAiStatus } from './consult-ai-status.js';
import { AI_TEXT, emotionLabelText, trendText } from './consult-ai-text.js';
import { keepTokenFresh } from './connection.js';
import { followConsultAi, openConsultSocket, type AiFollower, type ConsultSocket } from './consult-hub.js';
import { bilingual, h, replaceChildren } from './dom.js';
import { both } from './i18n.js';
import { ROLE_TEXT } from './media-text.js';
import { decodeToken, storeTokenInFragment, tokenClaims } from './token.js';
import { DEFAULT_TIMEZONE, fetchClinic } from './clinic-info.js';

/** Lines kept on the page; older ones are in the hub's history. */
const MAX_LINES = 500;
/** Utterances per speaker in the sparkline. */
const TREND_POINTS = 24;
/** Refusals after which asking again cannot help. */
const FINAL_REFUSALS = new Set(['AUTH_FORBIDDEN', 'AUTH_WRONG_CLINIC', 'AUTH_INVALID', 'AUTH_EXPIRED', 'CONSULT_NOT_FOUND']);
const RETRY_MS = 5000;
const SVG_NS = 'http://www.w3.org/2000/svg';

export interface ClinicianAiAccess {
  hubToken: string;
  /** For an all-clinics admin token. */
  clinic: string | null;
  consult: string;
  /** This page's own participant id (the room token's sub). */
  self: string;
}

export interface ConsultAiPanel {
  /** Stops following and closes the hub connection. */
  stop(): void;
}

/**
 * What the panel needs from the address: a clinician's hub token and the
 * consultation (from the room token). Null on every other page, which then
 * never opens a hub connection at all.
 */
export function clinicianAiAccess(fragment: string, roomToken: string): ClinicianAiAccess | null {
  const params = new URLSearchParams(fragment.replace(/^#/, ''));
  const hubToken = params.get('hub');
  if (!hubToken) return null;
  const role = decodeToken(hubToken)?.role;
  if (!role || !CONSULT_EVENT_ROLES['consult:subscribe'].includes(role)) return null;
  const claims = tokenClaims(roomToken);
  if (!claims || typeof claims.consult !== 'string' || typeof claims.sub !== 'string') return null;
  return { hubToken, clinic: params.get('clinic'), consult: claims.consult, self: claims.sub };
}

/** Starts the panel in `element` (hidden until the hub accepts); null when this page is not a clinician's. */
export function startConsultAiPanel(element: HTMLElement, roomToken: string): ConsultAiPanel | null {
  const access = clinicianAiAccess(location.hash, roomToken);
  if (!access) return null;
  const socket = openConsultSocket(access.hubToken, access.clinic);
  keepTokenFresh(socket, access.hubToken, (token) => storeTokenInFragment(token, 'hub'));
  const view = renderPanel(element, access.self);
  // Times in the clinic's timezone, not the device's (a doctor abroad reads the clinic's clock).
  const clinicId = access.clinic ?? (typeof tokenClaims(access.hubToken)?.clinic === 'string' ? String(tokenClaims(access.hubToken)?.clinic) : '');
  void fetchClinic(access.hubToken, clinicId).then((info) => view.timeZone(info?.timezone ?? DEFAULT_TIMEZONE));
  let retry: ReturnType<typeof setTimeout> | undefined;
  let follower: AiFollower | null = null;

  const status = watchAiStatus(socket, access.consult, (ai) => view.availability(aiStatusText(ai)));
  const stop = () => {
    clearTimeout(retry);
    status.stop();
    follower?.stop();
    follower = null;
    socket.close();
  };
  const refused = () => {
    stop();
    element.hidden = true;
  };

  follower = followConsultAi(socket, access.consult, {
    onSubscribed() {
      element.hidden = false;
      view.status(null);
      status.check();
    },
    onResult: view.add,
    onEnded() {
      view.status(AI_TEXT.ended);
      stop();
    },
    onError(error: ProtocolError) {
      if (FINAL_REFUSALS.has(error.code)) return refused();
      // Busy or briefly unable to audit: subscribe and read the history again a little later.
      clearTimeout(retry);
      retry = setTimeout(() => socket.disconnect().connect(), RETRY_MS);
    },
  });
  socket.on('connect', () => view.status(null));
  socket.on('disconnect', (reason) => {
    if (!follower) return;
    view.status(AI_TEXT.reconnecting);
    // The client does not reconnect by itself after the hub closed the socket (a node draining): another node will take it.
    if (reason === 'io server disconnect') setTimeout(() => follower && socket.connect(), 500 + Math.random() * 2000);
  });
  socket.on('connect_error', () => {
    // Not active: the hub refused the token itself (expired, invalid), retrying will not help.
    if (!socket.active) refused();
    else if (!element.hidden) view.status(AI_TEXT.reconnecting);
  });
  return { stop };
}

interface Line {
  element: HTMLLIElement;
  participant: string;
  utterance: string;
  kind: AiTranscript['kind'];
  startMs: number;
  endMs: number;
}

interface Speaker {
  element: HTMLLIElement;
  role: ConsultRole;
  /** Stress after each utterance, by utterance start. */
  points: { utterance: string; startMs: number; endMs: number; stress: number; top: AiEmotion['labels'][number] | null }[];
}

interface PanelView {
  add(result: AiResultMessage): void;
  /** The connection's state (reconnecting, ended), or null. */
  status(text: { ja: string; en: string } | null): void;
  /** Why nothing will arrive (transcripts off, no AI worker), or null. */
  availability(text: { ja: string; en: string } | null): void;
  /** The clinic's timezone: every time shown, and every one shown already, in it. */
  timeZone(zone: string): void;
}

function renderPanel(element: HTMLElement, self: string): PanelView {
  const formatIn = (timeZone: string) => new Intl.DateTimeFormat('ja-JP', { timeZone, hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
  let time = formatIn(DEFAULT_TIMEZONE);
  const statusLine = h('p', { class: 'ai-status', id: 'ai-session-status', role: 'status', hidden: true });
  const availabilityLine = h('p', { class: 'ai-status ai-availability', id: 'ai-availability', role: 'status', hidden: true });
  // A log, but not read out as it grows: a screen reader speaking over the patient would be worse than no transcript.
  const transcript = h('ol', { class: 'ai-transcript', id: 'ai-transcript', role: 'log', 'aria-live': 'off', 'aria-labelledby': 'ai-transcript-title', tabindex: 0 });
  const transcriptEmpty = h('p', { class: 'ai-empty' }, bilingual(AI_TEXT.noTranscript, 'inline'));
  const speakers = h('ul', { class: 'ai-speakers', id: 'ai-emotions', 'aria-labelledby': 'ai-emotions-title' });
  const speakersEmpty = h('p', { class: 'ai-empty' }, bilingual(AI_TEXT.noEmotions, 'inline'));
  element.replaceChildren(
    h('h2', { class: 'ai-title', id: 'ai-panel-title' }, bilingual(AI_TEXT.title, 'inline')),
    statusLine,
    availabilityLine,
    h('h3', { class: 'ai-subtitle', id: 'ai-transcript-title' }, bilingual(AI_TEXT.transcript, 'inline')),
    transcriptEmpty,
    transcript,
    h('h3', { class: 'ai-subtitle', id: 'ai-emotions-title' }, bilingual(AI_TEXT.emotions, 'inline')),
    speakersEmpty,
    speakers,
    h('p', { class: 'ai-disclaimer' }, bilingual(AI_TEXT.disclaimer, 'inline')),
  );
  element.setAttribute('aria-labelledby', 'ai-panel-title');

  const lines = new Map<string, Line>();
  /** Utterances whose final (or, with an empty final, whose emotion) has arrived: later partials of them are stale. */
  const settled = new Set<string>();
  const bySpeaker = new Map<string, Speaker>();
  const key = (participant: string, utterance: string) => `${participant}/${utterance}`;

  const speakerLabel = (participant: string, role: ConsultRole) =>
    h('span', { class: 'ai-speaker' }, bilingual(ROLE_TEXT[role], 'inline'), participant === self ? h('span', { class: 'ai-you' }, `（${both(AI_TEXT.you, ' / ')}）`) : null);

  const keepScrolled = (change: () => void) => {
    const atBottom = transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 32;
    change();
    transcriptEmpty.hidden = lines.size > 0;
    // Follow the conversation unless the reader has scrolled up to read something earlier.
    if (atBottom) transcript.scrollTop = transcript.scrollHeight;
  };

  const removeLine = (line: Line) => {
    line.element.remove();
    lines.delete(key(line.participant, line.utterance));
  };

  /**
   * Two results of one speaker over the same speech: the later to arrive stands. A failover can lose a final the
   * clinician was already sent; the AI worker then makes it again from the audio, and a VAD started afresh may put its
   * start a few ms earlier, which makes it another utterance (id) with maybe other text (docs/ai-workers.md, "A
   * failover that rewinds a run"). One speaker's utterances never overlap otherwise: edges that only touch do not.
   */
  const overlaps = (a: { startMs: number; endMs: number }, b: { startMs: number; endMs: number }) => a.startMs < b.endMs && b.startMs < a.endMs;

  /** The finals of another utterance of `t`'s speaker that `t`, a final arriving after them, stands for. */
  const dropReplacedFinals = (t: AiTranscript) => {
    for (const line of lines.values()) {
      if (line.participant === t.participant && line.kind === 'final' && line.utterance !== t.utterance && overlaps(line, t)) removeLine(line);
    }
  };

  /** A speaker's partial of an earlier utterance is stale once they have moved on (its final was empty, or never came). */
  const dropStalePartials = (participant: string, utterance: string, startMs: number) => {
    for (const line of lines.values()) {
      if (line.participant === participant && line.kind === 'partial' && line.utterance !== utterance && line.startMs < startMs) removeLine(line);
    }
  };

  const placeLine = (li: HTMLLIElement, startMs: number) => {
    // Most lines are the newest: look from the end.
    let before: Element | null = null;
    for (let node = transcript.lastElementChild; node; node = node.previousElementSibling) {
      if (Number((node as HTMLElement).dataset.startMs) <= startMs) break;
      before = node;
    }
    transcript.insertBefore(li, before);
  };

  const addTranscript = (t: AiTranscript) => {
    const id = key(t.participant, t.utterance);
    if (t.kind === 'partial' && settled.has(id)) return;
    if (t.kind === 'final') settled.add(id);
    keepScrolled(() => {
      dropStalePartials(t.participant, t.utterance, t.startMs);
      if (t.kind === 'final') dropReplacedFinals(t);
      let line = lines.get(id);
      if (!line) {
        const li = h('li', { class: 'ai-line', 'data-participant': t.participant, 'data-role': t.role, 'data-utterance': t.utterance, 'data-start-ms': t.startMs });
        line = { element: li, participant: t.participant, utterance: t.utterance, kind: t.kind, startMs: t.startMs, endMs: t.endMs };
        lines.set(id, line);
        placeLine(li, t.startMs);
      }
      line.kind = t.kind;
      line.endMs = t.endMs;
      const at = new Date(t.startMs);
      line.element.dataset.kind = t.kind;
      line.element.dataset.endMs = String(t.endMs);
      replaceChildren(
        line.element,
        h('div', { class: 'ai-line-head' },
          speakerLabel(t.participant, t.role),
          h('time', { datetime: at.toISOString() }, time.format(at)),
          t.kind === 'partial' ? h('span', { class: 'ai-speaking' }, bilingual(AI_TEXT.speaking, 'inline')) : null,
        ),
        h('p', { class: 'ai-text', lang: t.language }, t.text),
      );
      while (lines.size > MAX_LINES) {
        const oldest = transcript.firstElementChild as HTMLElement | null;
        const line = oldest ? lines.get(key(oldest.dataset.participant ?? '', oldest.dataset.utterance ?? '')) : undefined;
        if (!line) break;
        removeLine(line);
      }
    });
  };

  const addEmotion = (e: AiEmotion) => {
    const id = key(e.participant, e.utterance);
    settled.add(id);
    const stale = lines.get(id);
    // The emotion comes with the utterance's final; a line still partial had an empty final.
    if (stale?.kind === 'partial') keepScrolled(() => removeLine(stale));
    let speaker = bySpeaker.get(e.participant);
    if (!speaker) {
      speaker = { element: h('li', { class: 'ai-speaker-trend', 'data-participant': e.participant, 'data-role': e.role }), role: e.role, points: [] };
      bySpeaker.set(e.participant, speaker);
      speakers.append(speaker.element);
      speakersEmpty.hidden = true;
    }
    if (speaker.points.some((p) => p.utterance === e.utterance)) return;
    // The emotion of a final made again over the same speech (see `overlaps`) stands for the one before it.
    speaker.points = speaker.points.filter((p) => !overlaps(p, e));
    speaker.points.push({ utterance: e.utterance, startMs: e.startMs, endMs: e.endMs, stress: e.stress, top: e.labels[0] ?? null });
    speaker.points.sort((a, b) => a.startMs - b.startMs);
    if (speaker.points.length > TREND_POINTS) speaker.points.splice(0, speaker.points.length - TREND_POINTS);
    renderSpeaker(e.participant, speaker);
  };

  const renderSpeaker = (participant: string, speaker: Speaker) => {
    const values = speaker.points.map((p) => p.stress);
    const last = speaker.points.at(-1)!;
    speaker.element.dataset.stress = last.stress.toFixed(3);
    speaker.element.dataset.utterances = String(speaker.points.length);
    speaker.element.dataset.endMs = String(last.endMs);
    replaceChildren(
      speaker.element,
      speakerLabel(participant, speaker.role),
      sparkline(values, both(trendText(values))),
      h('span', { class: 'ai-stress' }, bilingual(AI_TEXT.stress, 'inline'), ` ${Math.round(last.stress * 100)}`),
      last.top
        ? h('span', { class: 'ai-top-label', 'data-label': last.top.label }, bilingual(emotionLabelText(last.top.label), 'inline'), ` ${Math.round(last.top.p * 100)}%`)
        : null,
    );
  };

  return {
    add(result) {
      if (result.type === 'transcript') addTranscript(result.payload);
      else addEmotion(result.payload);
    },
    status(text) {
      statusLine.hidden = text === null;
      statusLine.replaceChildren(text ? bilingual(text, 'inline') : '');
    },
    availability(text) {
      availabilityLine.hidden = text === null;
      availabilityLine.replaceChildren(text ? bilingual(text, 'inline') : '');
    },
    timeZone(zone) {
      try {
        time = formatIn(zone);
      } catch {
        return; // not a timezone this browser knows: keep the default
      }
      for (const shown of transcript.querySelectorAll<HTMLTimeElement>('time[datetime]')) shown.textContent = time.format(new Date(shown.dateTime));
    },
  };
}

/** The stress index over a speaker's utterances (0 at the bottom, 1 at the top), as an inline SVG with a text equivalent. */
function sparkline(values: readonly number[], label: string): SVGSVGElement {
  const width = 100;
  const height = 28;
  const y = (v: number) => (height - 2 - Math.min(1, Math.max(0, v)) * (height - 4)).toFixed(1);
  const x = (i: number) => (values.length === 1 ? width : (i / (values.length - 1)) * width).toFixed(1);
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('class', 'ai-sparkline');
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  const baseline = document.createElementNS(SVG_NS, 'line');
  for (const [name, value] of [['x1', '0'], ['x2', String(width)], ['y1', y(0.5)], ['y2', y(0.5)], ['class', 'ai-sparkline-mid']]) baseline.setAttribute(name!, value!);
  const line = document.createElementNS(SVG_NS, 'polyline');
  line.setAttribute('points', values.map((v, i) => `${x(i)},${y(v)}`).join(' '));
  line.setAttribute('class', 'ai-sparkline-line');
  const dot = document.createElementNS(SVG_NS, 'circle');
  dot.setAttribute('cx', x(values.length - 1));
  dot.setAttribute('cy', y(values.at(-1) ?? 0));
  dot.setAttribute('r', '2.5');
  dot.setAttribute('class', 'ai-sparkline-dot');
  svg.append(baseline, line, dot);
  return svg;
}
