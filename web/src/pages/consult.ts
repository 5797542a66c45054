/**
 * The consultation page (/consult#media=<media-server URL>&token=<room token>),
 * opened from the ticket page or the staff console once a doctor admits a
 * patient. First a device check (camera and microphone pickers, a preview and
 * a level meter), then the room: everyone's camera in a grid with their name,
 * role and mute state, screen shares, mute / camera / screen / leave,
 * connection quality, the recording indicator and the consent control
 * (clinicians also start and stop recording). Japanese and English.
 * A clinician's page (opened with their hub token) also shows the AI panel:
 * the live transcript and an emotion trend per speaker (consult-ai-panel.ts).
 */
import { patientThreadId, type ParticipantInfo, type RecordingStatus } from '@clinic-hub/protocol';
import { openChatSocket } from '../lib/chat-connection.js';
import { mountChatPanel } from '../lib/chat-panel.js';
import { CHAT_TEXT, roleText } from '../lib/chat-text.js';
import { keepTokenFresh } from '../lib/connection.js';
import { startConsultAiPanel, type ConsultAiPanel } from '../lib/consult-ai-panel.js';
import { bilingual, byId, h, replaceChildren } from '../lib/dom.js';
import { type Bilingual } from '../lib/i18n.js';
import { MediaClient, isClinician, roomPassFromFragment, type ConnectionQuality, type LocalTracks, type MediaClientState, type RemoteParticipant } from '../lib/media-client.js';
import { askRecordingConsent } from '../lib/consent-dialog.js';
import { fetchClinic } from '../lib/clinic-info.js';
import { afterConsultation } from '../lib/consult-after.js';
import { MEDIA_ERROR_TEXT_JA, MEDIA_TEXT, ROLE_TEXT, waitingConsentText } from '../lib/media-text.js';
import { connectionIndicator, showFatal } from '../lib/page.js';
import { decodeToken, storeTokenInFragment, tokenClaims } from '../lib/token.js';

const pass = roomPassFromFragment();
/** Followed from the start, so that the history is there when the clinician enters the room; null on a patient's page. */
let aiPanel: ConsultAiPanel | null = null;
if (!pass) showFatal(MEDIA_TEXT.noPass);
else {
  aiPanel = startConsultAiPanel(byId('ai-panel'), pass.token);
  startConsultChat();
  void precheck(pass);
}

/**
 * The patient's chat with the clinic (their ticket's thread), when the page
 * was opened with a hub token and the ticket (`#…&hub=…&ticket=…`): the same
 * thread the ticket page and the staff chat show, so a link or a written
 * instruction reaches the other side during the call, and stays after it.
 */
function startConsultChat(): void {
  const params = new URLSearchParams(location.hash.slice(1));
  const hubToken = params.get('hub');
  const ticketId = params.get('ticket');
  const who = hubToken ? decodeToken(hubToken) : null;
  if (!hubToken || !ticketId || !who?.sub || !who.role) return;
  const clinic = params.get('clinic');
  const socket = openChatSocket(hubToken, clinic);
  let timeZone: string | null = null;
  keepTokenFresh(socket, hubToken, (token) => storeTokenInFragment(token, 'hub'));
  const panel = mountChatPanel({
    socket,
    threadId: patientThreadId(ticketId),
    title: CHAT_TEXT.chatWithClinic,
    self: { sub: who.sub, role: who.role },
    token: () => new URLSearchParams(location.hash.slice(1)).get('hub') ?? hubToken,
    clinic,
    senderName: (_member, role) => roleText(role),
    timeZone: () => timeZone,
  });
  // Times in the clinic's timezone, as everywhere else.
  const clinicId = clinic ?? who.clinic;
  if (clinicId && clinicId !== '*') {
    void fetchClinic(hubToken, clinicId).then((info) => {
      timeZone = info?.timezone ?? null;
      panel.refresh();
    });
  }
  const section = byId('consult-chat');
  section.replaceChildren(panel.element);
  socket.on('connect', () => (section.hidden = false));
}

/**
 * Timings the browser tests print, per participant: first frame shown, in ms
 * after this page sent its join, after its connection came up, and after the
 * participant appeared on this page.
 */
const firstFrameMs = new Map<string, { fromJoin: number; fromConnected: number; fromAppeared: number }>();

// ---- device check ----

async function precheck(roomPass: { mediaUrl: string; token: string }): Promise<void> {
  const section = byId('precheck');
  const preview = h('video', { class: 'preview', autoplay: true, playsinline: true, muted: true });
  preview.muted = true;
  const cameraSelect = h('select', { id: 'camera-select', 'aria-label': `${MEDIA_TEXT.camera.ja} / ${MEDIA_TEXT.camera.en}` });
  const micSelect = h('select', { id: 'mic-select', 'aria-label': `${MEDIA_TEXT.microphone.ja} / ${MEDIA_TEXT.microphone.en}` });
  const meterFill = h('div', { class: 'meter-fill' });
  const meter = h('div', { class: 'meter', id: 'level-meter', role: 'meter', 'aria-label': `${MEDIA_TEXT.level.ja} / ${MEDIA_TEXT.level.en}`, 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': 0 }, meterFill);
  const problem = h('p', { class: 'device-problem', role: 'alert', hidden: true }, bilingual(MEDIA_TEXT.noDevices));
  const joinButton = h('button', { type: 'button', class: 'primary', id: 'join-button' }, bilingual(MEDIA_TEXT.join, 'inline'));
  section.replaceChildren(
    h('h2', { id: 'precheck-title' }, bilingual(MEDIA_TEXT.deviceCheck)),
    h('p', { class: 'hint' }, bilingual(MEDIA_TEXT.deviceHint)),
    h('div', { class: 'precheck-body' },
      preview,
      h('div', { class: 'devices' },
        h('label', {}, bilingual(MEDIA_TEXT.camera, 'inline'), cameraSelect),
        h('label', {}, bilingual(MEDIA_TEXT.microphone, 'inline'), micSelect),
        h('div', { class: 'level' }, bilingual(MEDIA_TEXT.level, 'inline'), meter),
        problem,
        joinButton,
      ),
    ),
  );

  let stream: MediaStream | null = null;
  let levelStop: (() => void) | null = null;
  const open = async () => {
    stream?.getTracks().forEach((t) => t.stop());
    levelStop?.();
    stream = await getMedia(cameraSelect.value || undefined, micSelect.value || undefined);
    problem.hidden = stream !== null && stream.getAudioTracks().length > 0 && stream.getVideoTracks().length > 0;
    preview.srcObject = stream;
    const mic = stream?.getAudioTracks()[0];
    levelStop = mic ? levelMeter(mic, (level) => {
      meterFill.style.width = `${Math.round(level * 100)}%`;
      meter.setAttribute('aria-valuenow', String(Math.round(level * 100)));
    }) : null;
    await fillDevicePickers(cameraSelect, micSelect, stream);
  };
  cameraSelect.addEventListener('change', () => void open());
  micSelect.addEventListener('change', () => void open());
  await open();
  document.documentElement.dataset.stage = 'precheck';

  joinButton.addEventListener('click', () => {
    levelStop?.();
    section.hidden = true;
    enterRoom(roomPass, stream);
  }, { once: true });
}

async function getMedia(cameraId?: string, micId?: string): Promise<MediaStream | null> {
  // 720p: Chromium sends three simulcast layers from 960×540 up (two below), so every tile size has a layer to fit it.
  const video: MediaTrackConstraints = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 24 }, ...(cameraId ? { deviceId: { exact: cameraId } } : {}) };
  const audio: MediaTrackConstraints = { echoCancellation: true, noiseSuppression: true, ...(micId ? { deviceId: { exact: micId } } : {}) };
  for (const constraints of [{ video, audio }, { audio }, { video }] as MediaStreamConstraints[]) {
    try {
      return await navigator.mediaDevices.getUserMedia(constraints);
    } catch {
      // Fall back to whatever works: a patient with a broken camera can still talk.
    }
  }
  return null;
}

async function fillDevicePickers(cameraSelect: HTMLSelectElement, micSelect: HTMLSelectElement, stream: MediaStream | null): Promise<void> {
  const devices = await navigator.mediaDevices.enumerateDevices().catch(() => [] as MediaDeviceInfo[]);
  const fill = (select: HTMLSelectElement, kind: MediaDeviceKind, current: string | undefined) => {
    const options = devices.filter((d) => d.kind === kind && d.deviceId);
    select.replaceChildren(...options.map((d, i) => h('option', { value: d.deviceId, selected: d.deviceId === current }, d.label || `${kind === 'videoinput' ? 'Camera' : 'Microphone'} ${i + 1}`)));
    select.disabled = options.length === 0;
  };
  fill(cameraSelect, 'videoinput', stream?.getVideoTracks()[0]?.getSettings().deviceId);
  fill(micSelect, 'audioinput', stream?.getAudioTracks()[0]?.getSettings().deviceId);
}

/** The microphone's level (0..1), about 20 times a second; returns the stop function. */
function levelMeter(track: MediaStreamTrack, onLevel: (level: number) => void): () => void {
  const context = new AudioContext();
  const analyser = context.createAnalyser();
  analyser.fftSize = 1024;
  context.createMediaStreamSource(new MediaStream([track])).connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  const timer = setInterval(() => {
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const s of samples) sum += s * s;
    // RMS on a rough log scale: speech sits in the middle of the meter.
    const rms = Math.sqrt(sum / samples.length);
    onLevel(Math.max(0, Math.min(1, 1 + Math.log10(rms + 1e-6) / 3)));
  }, 50);
  return () => {
    clearInterval(timer);
    void context.close();
  };
}

// ---- the room ----

/** What the room's parts share: the client, this person's tracks, and what the server last said. */
interface RoomContext {
  client: MediaClient;
  local: LocalTracks;
  /** The device check's stream (the self preview). */
  stream: MediaStream | null;
  roomToken: string;
  self: ParticipantInfo | null;
  recording: RecordingStatus;
  muted: { mic: boolean; camera: boolean };
  /** Who speaks now (the server's active speaker): their tile is outlined. */
  speaker: string | null;
}

/** The room: its status bar, the video grid and the controls, each following the client; then the client starts. */
function enterRoom(roomPass: { mediaUrl: string; token: string }, stream: MediaStream | null): void {
  const local: LocalTracks = { mic: stream?.getAudioTracks()[0] ?? null, camera: stream?.getVideoTracks()[0] ?? null, screen: null };
  const room: RoomContext = {
    client: new MediaClient(roomPass.mediaUrl, roomPass.token, local),
    local,
    stream,
    roomToken: roomPass.token,
    self: null,
    recording: { state: 'off', missingConsent: [], recordingId: null, startedAt: null },
    muted: { mic: false, camera: false },
    speaker: null,
  };
  byId('room').hidden = false;
  document.documentElement.dataset.stage = 'room';
  const status = mountStatusBar();
  const grid = mountGrid(room);
  const controls = mountControls(room);
  followClient(room, { status, grid, controls });
  grid.renderSelf();
  controls.render();
  grid.renderParticipants(new Map());
  room.client.start();
  exposeTestHook(room);
}

/** Connection, quality and recording state at the top of the room. */
function mountStatusBar() {
  const indicator = connectionIndicator();
  byId('connection-slot').replaceChildren(indicator.element);
  const quality = h('div', { class: 'quality', id: 'quality', 'data-quality': 'unknown' });
  byId('quality-slot').replaceChildren(quality);
  const recordingBadge = h('div', { class: 'recording-badge', id: 'recording-badge', 'data-state': 'off' });
  byId('recording-slot').replaceChildren(recordingBadge);
  return {
    indicator,
    showQuality(value: ConnectionQuality): void {
      quality.dataset.quality = value;
      const text: Bilingual = value === 'good' ? MEDIA_TEXT.qualityGood : value === 'fair' ? MEDIA_TEXT.qualityFair : value === 'poor' ? MEDIA_TEXT.qualityPoor : MEDIA_TEXT.qualityUnknown;
      quality.replaceChildren(h('span', { class: 'bars', 'aria-hidden': 'true' }, h('i'), h('i'), h('i')), bilingual(text, 'inline'));
    },
    showRecording(recording: RecordingStatus): void {
      recordingBadge.dataset.state = recording.state;
      document.documentElement.dataset.recording = recording.state;
      if (recording.state === 'recording') recordingBadge.replaceChildren(h('span', { class: 'dot', 'aria-hidden': 'true' }), bilingual(MEDIA_TEXT.recording, 'inline'));
      else if (recording.state === 'waiting-consent') recordingBadge.replaceChildren(bilingual(waitingConsentText(recording.missingConsent.length), 'inline'));
      else recordingBadge.replaceChildren();
    },
  };
}

/** The grid: this person's preview, then a tile per other participant's camera and per shared screen. */
function mountGrid(room: RoomContext) {
  const grid = byId('grid');
  const notice = byId('notice');
  const tiles = new Map<string, HTMLElement>();
  const selfVideo = h('video', { autoplay: true, playsinline: true, muted: true });
  selfVideo.muted = true;
  selfVideo.srcObject = room.stream;
  const selfTile = h('figure', { class: 'tile self', 'data-participant': 'self' }, selfVideo, h('figcaption', {}));
  grid.append(selfTile);

  function renderSelf(): void {
    const cameraOff = room.muted.camera || !room.local.camera;
    replaceChildren(
      selfTile.querySelector('figcaption')!,
      h('span', { class: 'name' }, room.self?.name ?? ''),
      bilingual(MEDIA_TEXT.you, 'inline role'),
      room.muted.mic ? h('span', { class: 'badge muted' }, bilingual(MEDIA_TEXT.muted, 'inline')) : null,
      cameraOff ? h('span', { class: 'badge camera-off' }, bilingual(MEDIA_TEXT.cameraOff, 'inline')) : null,
    );
    selfTile.dataset.cameraOff = String(cameraOff);
  }

  function renderParticipants(participants: ReadonlyMap<string, RemoteParticipant>): void {
    const seen = new Set<string>();
    for (const [id, participant] of participants) {
      seen.add(id);
      upsertTile(id, participant, 'camera');
      if (participant.streams.screen && participant.info.sources.includes('screen')) {
        seen.add(`${id}#screen`);
        upsertTile(id, participant, 'screen');
      }
    }
    for (const [key, tile] of tiles) {
      if (seen.has(key)) continue;
      tile.remove();
      tiles.delete(key);
    }
    notice.hidden = participants.size > 0;
    if (participants.size === 0) notice.replaceChildren(bilingual(MEDIA_TEXT.waitingForOthers));
    grid.dataset.count = String(tiles.size + 1);
  }

  function upsertTile(id: string, participant: RemoteParticipant, kind: 'camera' | 'screen'): void {
    const key = kind === 'screen' ? `${id}#screen` : id;
    let tile = tiles.get(key);
    if (!tile) {
      tile = newTile(room.client, id, kind);
      tiles.set(key, tile);
      grid.append(tile);
    }
    showTracks(tile.querySelector('video')!, kind === 'screen' ? [participant.streams.screen] : [participant.streams.camera, participant.streams.mic]);
    captionTile(tile, participant.info, kind, kind === 'camera' && room.speaker === id);
  }

  return { renderSelf, renderParticipants };
}

/** An empty tile for a participant's camera or screen, reporting its size to the client and its first frame to the timings. */
function newTile(client: MediaClient, id: string, kind: 'camera' | 'screen'): HTMLElement {
  const video = h('video', { autoplay: true, playsinline: true });
  const tile = h('figure', { class: `tile ${kind === 'screen' ? 'screen' : ''}`.trim(), 'data-participant': id, 'data-kind': kind }, video, h('figcaption', {}));
  if (kind === 'camera') watchFirstFrame(client, id, video);
  // The server sends no larger simulcast layer than the tile shows (mediasoup).
  new ResizeObserver(([entry]) => {
    if (entry) client.setView(id, kind, entry.contentRect.width, entry.contentRect.height);
  }).observe(video);
  return tile;
}

/** Puts these streams' tracks on the video, unless it shows them already (a new srcObject restarts playback). */
function showTracks(video: HTMLVideoElement, streams: (MediaStream | undefined)[]): void {
  const tracks = streams.flatMap((stream) => stream?.getTracks() ?? []);
  const current = video.srcObject instanceof MediaStream ? video.srcObject.getTracks() : [];
  if (tracks.length !== current.length || tracks.some((t) => !current.includes(t))) video.srcObject = tracks.length > 0 ? new MediaStream(tracks) : null;
}

/** Name, role and badges (muted, camera off, speaking) of a tile. */
function captionTile(tile: HTMLElement, info: ParticipantInfo, kind: 'camera' | 'screen', speaking: boolean): void {
  const cameraOff = kind === 'camera' && (info.muted.camera || !info.sources.includes('camera'));
  tile.dataset.cameraOff = String(cameraOff);
  tile.dataset.role = info.part;
  tile.dataset.speaking = String(speaking);
  replaceChildren(
    tile.querySelector('figcaption')!,
    h('span', { class: 'name' }, info.name),
    kind === 'screen' ? bilingual(MEDIA_TEXT.screenOf, 'inline role') : bilingual(ROLE_TEXT[info.part], 'inline role'),
    kind === 'camera' && (info.muted.mic || !info.sources.includes('mic')) ? h('span', { class: 'badge muted' }, bilingual(MEDIA_TEXT.muted, 'inline')) : null,
    cameraOff ? h('span', { class: 'badge camera-off' }, bilingual(MEDIA_TEXT.cameraOff, 'inline')) : null,
    speaking ? h('span', { class: 'badge speaking' }, bilingual(MEDIA_TEXT.speaking, 'inline')) : null,
  );
}

/** Records when a camera's first frame was shown, for the timings the browser tests print (firstFrameMs). */
function watchFirstFrame(client: MediaClient, id: string, video: HTMLVideoElement): void {
  if (!('requestVideoFrameCallback' in video)) return;
  const appearedAt = performance.now();
  video.requestVideoFrameCallback(() => {
    const now = performance.now();
    if (firstFrameMs.has(id)) return;
    // fromConnected: from when this camera could first be shown — its connection up and its track there
    // (on mediasoup each consumer is added to the receive connection after it came up).
    const ready = Math.max(client.connectedAt, client.cameraTrackAt.get(id) ?? 0);
    firstFrameMs.set(id, { fromJoin: Math.round(now - client.joinSentAt), fromConnected: Math.round(now - ready), fromAppeared: Math.round(now - appearedAt) });
  });
}

/** Mute, camera, screen, consent, recording (clinicians) and leave, with the line that shows a refused request. */
function mountControls(room: RoomContext) {
  const { client, local } = room;
  const micButton = h('button', { type: 'button', id: 'mic-toggle', 'aria-pressed': 'false' });
  const cameraButton = h('button', { type: 'button', id: 'camera-toggle', 'aria-pressed': 'false' });
  const screenButton = h('button', { type: 'button', id: 'screen-toggle', 'aria-pressed': 'false' });
  const consentButton = h('button', { type: 'button', id: 'consent-toggle', 'aria-pressed': 'false' });
  const recordButton = h('button', { type: 'button', id: 'recording-toggle', hidden: true });
  const leaveButton = h('button', { type: 'button', id: 'leave', class: 'leave' }, bilingual(MEDIA_TEXT.leave, 'inline'));
  const errorLine = h('p', { class: 'control-error', id: 'control-error', role: 'alert', hidden: true });
  byId('controls').replaceChildren(micButton, cameraButton, screenButton, consentButton, recordButton, leaveButton, errorLine);

  function render(): void {
    label(micButton, room.muted.mic ? MEDIA_TEXT.unmute : MEDIA_TEXT.mute, room.muted.mic);
    micButton.disabled = !local.mic;
    label(cameraButton, room.muted.camera ? MEDIA_TEXT.startCamera : MEDIA_TEXT.stopCamera, room.muted.camera);
    cameraButton.disabled = !local.camera;
    label(screenButton, local.screen ? MEDIA_TEXT.stopSharing : MEDIA_TEXT.shareScreen, local.screen !== null);
    screenButton.hidden = !('getDisplayMedia' in navigator.mediaDevices);
    const consent = room.self?.consent ?? false;
    label(consentButton, consent ? MEDIA_TEXT.withdrawConsent : MEDIA_TEXT.consent, consent);
    recordButton.hidden = !room.self || !isClinician(room.self.part);
    label(recordButton, room.recording.state === 'off' ? MEDIA_TEXT.startRecording : MEDIA_TEXT.stopRecording, room.recording.state !== 'off');
  }
  const showError = (error: { code?: string; message?: string }) => {
    const code = error.code ?? 'INTERNAL';
    const ja = (MEDIA_ERROR_TEXT_JA as Record<string, string>)[code] ?? code;
    showNotice({ ja, en: `${code}: ${error.message ?? ''}`.trim() });
  };
  const showNotice = (text: Bilingual) => {
    errorLine.replaceChildren(bilingual(text, 'inline'));
    errorLine.hidden = false;
  };
  let onSelfChange: (() => void) | null = null;
  const act = (action: () => Promise<void>) => {
    errorLine.hidden = true;
    action().catch((error: { code?: string; message?: string }) => showError(error));
  };
  /** A mute toggle: shown at once, then told to the others. */
  const toggle = (source: 'mic' | 'camera') => () =>
    act(async () => {
      room.muted[source] = !room.muted[source];
      render();
      onSelfChange?.();
      await client.setMuted(source, room.muted[source]);
    });

  micButton.addEventListener('click', toggle('mic'));
  cameraButton.addEventListener('click', toggle('camera'));
  screenButton.addEventListener('click', () => act(async () => {
    await toggleScreen(room, () => act(() => client.replaceTrack('screen', null).finally(render)));
    render();
  }));
  consentButton.addEventListener('click', () =>
    act(async () => {
      // Withdrawing needs no dialog; agreeing needs the facts first.
      if (room.self?.consent) return client.setConsent(false);
      if (await askRecordingConsent(recordingRetentionDays(room.roomToken))) await client.setConsent(true);
    }),
  );
  recordButton.addEventListener('click', () => act(() => client.recording(room.recording.state === 'off' ? 'start' : 'stop')));
  leaveButton.addEventListener('click', () => void client.leave());
  return {
    render,
    showError,
    showNotice,
    /** What to redraw when this person's own state changes from a control (their preview's badges). */
    onSelfChange(listener: () => void): void {
      onSelfChange = listener;
    },
  };
}

/** Shares a screen, or stops sharing; `stoppedByBrowser` runs when the browser's own "stop sharing" bar ends it. */
async function toggleScreen(room: RoomContext, stoppedByBrowser: () => void): Promise<void> {
  const { client, local } = room;
  if (local.screen) {
    local.screen.stop();
    await client.replaceTrack('screen', null);
    return;
  }
  const display = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
  const track = display.getVideoTracks()[0] ?? null;
  track?.addEventListener('ended', () => {
    if (local.screen === track) stoppedByBrowser();
  });
  await client.replaceTrack('screen', track);
}

/** The room's parts follow what the client says. */
function followClient(
  room: RoomContext,
  parts: { status: ReturnType<typeof mountStatusBar>; grid: ReturnType<typeof mountGrid>; controls: ReturnType<typeof mountControls> },
): void {
  const { client } = room;
  const { status, grid, controls } = parts;
  controls.onSelfChange(grid.renderSelf);
  client.on('state', (state) => {
    if (state.kind === 'closed' || state.kind === 'rejected') showAfter(state, room.stream, status.indicator);
    else status.indicator.update(connectionState(state));
  });
  client.on('self', (info) => {
    room.self = info;
    grid.renderSelf();
    controls.render();
  });
  client.on('participants', grid.renderParticipants);
  client.on('recording', (recording) => {
    if (recording.stopReason === 'media-worker-died') controls.showNotice(MEDIA_TEXT.recordingStoppedWorker);
    room.recording = recording;
    status.showRecording(recording);
    controls.render();
  });
  client.on('quality', status.showQuality);
  client.on('error', controls.showError);
  client.on('speaker', (participant) => {
    room.speaker = participant;
    grid.renderParticipants(client.participants);
  });
}

/** `window.__clinicHub`: what the browser tests read (and the ICE restart they trigger). */
function exposeTestHook(room: RoomContext): void {
  const { client } = room;
  Object.defineProperty(window, '__clinicHub', {
    configurable: true,
    value: Object.freeze({
      get media() {
        return {
          self: room.self?.id ?? null,
          participants: [...client.participants.keys()],
          recording: room.recording.state,
          firstFrameMs: Object.fromEntries(firstFrameMs),
        };
      },
      /** framesDecoded per participant whose camera this page receives, from getStats. */
      async framesDecoded(): Promise<Record<string, number>> {
        const out: Record<string, number> = {};
        for (const { participant, source, receiver } of client.receivers()) {
          if (source !== 'camera' || !client.participants.get(participant)?.streams.camera?.getTracks().includes(receiver.track)) continue;
          (await receiver.getStats()).forEach((entry: Record<string, unknown>) => {
            if (entry.type === 'inbound-rtp' && entry.kind === 'video') out[participant] = Number(entry.framesDecoded ?? 0);
          });
        }
        return out;
      },
      /** The active speaker as this page shows it. */
      get speaker() {
        return room.speaker;
      },
      /** ICE restarts this join has done (mediasoup). */
      get iceRestarts() {
        return client.iceRestarts;
      },
      /** Restarts ICE on the same transports now (what a network change does by itself). */
      restartIce(): Promise<void> {
        return client.restartIce();
      },
    }),
  });
}

function label(button: HTMLButtonElement, text: Bilingual, pressed: boolean): void {
  button.replaceChildren(bilingual(text, 'inline'));
  button.setAttribute('aria-pressed', String(pressed));
}

function connectionState(state: Exclude<MediaClientState, { kind: 'closed' | 'rejected' }>) {
  return { kind: state.kind };
}

function showAfter(state: Extract<MediaClientState, { kind: 'closed' | 'rejected' }>, stream: MediaStream | null, indicator: ReturnType<typeof connectionIndicator>): void {
  const after = afterConsultation(state);
  byId('room').hidden = true;
  aiPanel?.stop();
  byId('recording-slot').replaceChildren();
  byId('quality-slot').replaceChildren();
  // A normal end is not a connection problem: no red badge for it.
  if (after.kind === 'problem') indicator.update({ kind: 'rejected', code: after.code, message: state.kind === 'rejected' ? state.message : '' });
  else byId('connection-slot').replaceChildren();
  const section = byId('after');
  section.hidden = false;
  section.dataset.kind = after.kind;
  document.documentElement.dataset.stage = 'after';
  document.documentElement.dataset.closed = after.code;
  stream?.getTracks().forEach((t) => t.stop());
  replaceChildren(
    section,
    after.kind === 'ended'
      ? h('h2', { class: 'after-title', role: 'status' }, bilingual(after.text))
      : h('p', { class: 'after-text', role: after.kind === 'problem' ? 'alert' : 'status' }, bilingual(after.text)),
    after.kind === 'ended' ? h('p', { class: 'after-detail' }, bilingual(MEDIA_TEXT.endedDetail)) : null,
    after.canRejoin ? h('button', { type: 'button', class: 'primary', id: 'rejoin', onclick: () => location.reload() }, bilingual(MEDIA_TEXT.rejoin, 'inline')) : null,
  );
}

/** The room token's `recordingRetentionDays` (set by the hub), for the consent dialog. */
function recordingRetentionDays(roomToken: string): number | null {
  const days = tokenClaims(roomToken)?.recordingRetentionDays;
  return typeof days === 'number' && days > 0 ? days : null;
}
