/**
 * The check-in kiosk: a tablet at the clinic's entrance, opened with a kiosk
 * token (`/kiosk#token=…`). Patients pick their language and a department,
 * or type their appointment code, choose how to be told their turn is near,
 * and get their number on screen with a QR code of their own ticket page and
 * a printed slip (the browser's print dialog; with Chromium's
 * `--kiosk-printing` the slip goes to the default printer without one). After
 * a minute without a touch the kiosk goes back to its first screen.
 * `#idle=SECONDS` sets that time.
 */
import { newRequestId, openQueueSocket, request, showConnection } from '../lib/connection.js';
import { CHECKIN_TEXT } from '../lib/checkin-text.js';
import { startCheckinFlow } from '../lib/checkin-flow.js';
import { byId } from '../lib/dom.js';
import { pageToken, showFatal } from '../lib/page.js';
import { fetchSelfCheckinInfo } from '../lib/self-checkin-api.js';
import { printSlip } from '../lib/ticket-slip.js';
import { tokenFromFragment } from '../lib/token.js';

const DEFAULT_IDLE_SECONDS = 60;

const access = pageToken(['kiosk']);
if (access) void start(access.token, access.info.clinic ?? '');

async function start(token: string, clinic: string): Promise<void> {
  const info = await fetchSelfCheckinInfo(clinic, { token });
  if (!info.ok) {
    showFatal({ ja: CHECKIN_TEXT.outOfService.ja, en: CHECKIN_TEXT.outOfService.en }, `${info.error.code} ${info.error.message}`);
    return;
  }
  const socket = openQueueSocket(token);
  showConnection(socket, token);

  const idleSeconds = Number(new URLSearchParams(location.hash.slice(1)).get('idle') ?? DEFAULT_IDLE_SECONDS);
  let printed = 0;
  startCheckinFlow({
    root: byId('kiosk'),
    info,
    mode: 'kiosk',
    idleMs: (Number.isFinite(idleSeconds) && idleSeconds > 0 ? idleSeconds : DEFAULT_IDLE_SECONDS) * 1000,
    // One requestId per press: a lost ack resent is the same check-in.
    send: async (payload) => {
      const requestId = newRequestId();
      for (let attempt = 1; ; attempt++) {
        try {
          return await request(socket, 'queue:self-checkin', { ...payload, requestId }, 8000);
        } catch (error) {
          if (attempt >= 3) throw error;
        }
      }
    },
    onTicket: (result, _language, notice) => {
      const ticket = result.event.ticket;
      const dept = info.clinic.departments.find((d) => d.id === ticket.dept);
      printed += 1;
      printSlip({
        clinic: info.clinic.name,
        number: ticket.number,
        dept: dept?.name ?? { ja: ticket.dept, en: ticket.dept },
        waitMinutes: result.waitMinutes,
        patientUrl: result.patientUrl,
        ...(notice.kind === 'line' && result.line ? { lineUrl: result.line.url } : {}),
      });
    },
  });

  Object.defineProperty(window, '__clinicHub', {
    value: Object.freeze({
      get printed() {
        return printed;
      },
      get token() {
        return tokenFromFragment() ?? token;
      },
    }),
  });
}
