import type { RedisClient } from '@clinic-hub/platform/redis';
import { RecordingPurgeRequest, protocolError, type RecordingList, type RecordingPurgeResult, type Role } from '@clinic-hub/protocol';
import {
  RecordingError,
  findRecordingFile,
  getRecording,
  listRecordings,
  openRecordingFile,
  type RecordingConfig,
} from '@clinic-hub/recordings';
import { appendAudit } from '../audit/audit-log.js';
import type { Authenticator } from '../auth/authenticator.js';
import type { ClinicRegistry } from '../clinics/clinic-registry.js';
import type { HttpRequest, HttpResponse } from '../http/http-types.js';
import { errorResponse, isResponse, json, readJsonBody } from '../http/routes.js';
import type { RecordingPurges } from './recording-purges.js';
import type { Logger } from '@clinic-hub/platform/logging';

/** Who may list and export recordings: the clinic's doctors, and admins (of the clinic, or of every clinic). */
export const RECORDING_ROLES: readonly Role[] = ['admin', 'doctor'];

export interface RecordingRouteDeps {
  authenticator: Authenticator;
  clinics: ClinicRegistry;
  redis: RedisClient;
  config: RecordingConfig;
  /** Brings purges forward (RecordingPurges). */
  purges: Pick<RecordingPurges, 'request'>;
  logger: Logger;
}

const PATH = /^\/api\/clinics\/([A-Za-z0-9_-]{1,32})\/recordings(?:\/([A-Za-z0-9_-]{1,64})(?:\/files\/([^/]{1,400})|\/(purge))?)?$/;

/**
 * Consultation recordings over HTTP (bearer token):
 *
 * - `GET /api/clinics/:clinic/recordings[?consult=ID&count=N]` → RecordingList, newest first.
 * - `GET /api/clinics/:clinic/recordings/:id` → one RecordingMeta.
 * - `GET /api/clinics/:clinic/recordings/:id/files/:participant[?kind=av|screen&segment=N]`
 *   → the decrypted WebM, streamed (`x-recording-bytes` and
 *   `x-recording-sha256` say what a complete download is).
 * - `POST /api/clinics/:clinic/recordings/:id/purge` `{ reason }` (admins
 *   only) → 202 RecordingPurgeResult: the recording's purge is brought
 *   forward (RecordingPurges), audited as `recording.purge` with the reason.
 *
 * Metadata holds ids, roles, times and checksums, never names. Admins and
 * the clinic's doctors only (RECORDING_ROLES); every list, read and export
 * is appended to the clinic's audit stream (who, what, when, from where)
 * before anything is returned, so what cannot be audited is not served.
 * Without RECORDING_KEY the routes answer RECORDING_KEY_MISSING.
 */
export function createRecordingRoutes(deps: RecordingRouteDeps): (request: HttpRequest) => Promise<HttpResponse | null> {
  return async (request) => {
    const match = PATH.exec(request.path);
    if (!match) return null;
    const [, clinic, recordingId, participantPart, purge] = match as unknown as [string, string, string | undefined, string | undefined, string | undefined];
    if (purge && request.method !== 'POST') return json(405, { error: protocolError('METHOD_NOT_ALLOWED', 'use POST') }, { allow: 'POST' });
    if (!purge && request.method !== 'GET') return json(405, { error: protocolError('METHOD_NOT_ALLOWED', 'use GET') }, { allow: 'GET' });

    const checked = await deps.authenticator.bearer(request);
    if (!checked.ok) return errorResponse(checked.error.code, checked.error.detail);
    const caller = checked.token;
    if (caller.clinic !== '*' && caller.clinic !== clinic) return errorResponse('AUTH_WRONG_CLINIC');
    if (!RECORDING_ROLES.includes(caller.role)) return errorResponse('AUTH_FORBIDDEN', 'only admins and doctors see recordings');
    if (!deps.clinics.get(clinic)) return errorResponse('CLINIC_NOT_FOUND', clinic);
    if (purge && recordingId) {
      if (caller.role !== 'admin') return errorResponse('AUTH_FORBIDDEN', 'only admins purge recordings before their time');
      const body = readJsonBody(request, RecordingPurgeRequest, 'give { "reason": "why it is purged now" } (3–500 characters)');
      if (isResponse(body)) return body;
      const meta = await getRecording(deps.redis, clinic, recordingId);
      if (!meta) return errorResponse('RECORDING_NOT_FOUND', recordingId);
      if (meta.status === 'recording' || meta.status === 'stopped') {
        return errorResponse('RECORDING_IN_PROGRESS', meta.status === 'recording' ? 'it is still recording: stop it first' : 'it is being finalised: try again in a minute');
      }
      const at = Date.now();
      await appendAudit(deps.redis, clinic, { actor: caller.sub, role: caller.role, action: 'recording.purge', subject: recordingId, from: request.remoteAddress, after: JSON.stringify({ reason: body.reason }) });
      if (!(await deps.purges.request(meta, { by: caller.sub, at, reason: body.reason }))) {
        return errorResponse('STORE_UNAVAILABLE', 'no replica confirmed the purge request in time (HUB_REDIS_ACK_REPLICAS); send it again: the same request twice queues one purge');
      }
      deps.logger.info({ clinic, recording: recordingId, actor: caller.sub }, 'recording purge requested');
      const result: RecordingPurgeResult = { recording: recordingId, queued: true };
      return json(202, result);
    }
    const key = deps.config.key;
    if (!key) return errorResponse('RECORDING_KEY_MISSING', 'RECORDING_KEY is not set on this hub');

    const audit = (action: string, subject: string) =>
      appendAudit(deps.redis, clinic, { actor: caller.sub, role: caller.role, action, subject, from: request.remoteAddress });

    if (recordingId === undefined) {
      const consult = request.query.get('consult') ?? undefined;
      const count = Number(request.query.get('count') ?? 50);
      if (!Number.isInteger(count) || count < 1 || count > 500) return errorResponse('INVALID_PAYLOAD', 'count: a whole number from 1 to 500');
      await audit('recordings.list', consult ? `consult:${consult}` : 'recordings');
      const body: RecordingList = { clinic, recordings: await listRecordings(deps.redis, clinic, { count, ...(consult ? { consult } : {}) }) };
      return json(200, body);
    }

    const meta = await getRecording(deps.redis, clinic, recordingId);
    if (!meta) return errorResponse('RECORDING_NOT_FOUND', recordingId);
    if (participantPart === undefined) {
      await audit('recording.read', recordingId);
      return json(200, meta);
    }

    let participant: string;
    try {
      participant = decodeURIComponent(participantPart);
    } catch {
      return errorResponse('INVALID_PAYLOAD', 'participant: not a valid URL-encoded id');
    }
    const kind = request.query.get('kind');
    if (kind !== null && kind !== 'av' && kind !== 'screen') return errorResponse('INVALID_PAYLOAD', 'kind: av or screen');
    const segmentText = request.query.get('segment');
    const segment = segmentText === null ? undefined : Number(segmentText);
    if (segment !== undefined && (!Number.isInteger(segment) || segment < 0)) return errorResponse('INVALID_PAYLOAD', 'segment: a whole number from 0');
    try {
      const file = findRecordingFile(meta, participant, { ...(kind ? { kind } : {}), ...(segment === undefined ? {} : { segment }) });
      await audit('recording.export', `${recordingId}/${file.name}`);
      const { stream } = await openRecordingFile({ dir: deps.config.dir, key }, meta, file);
      stream.once('error', (error: Error) => deps.logger.error({ clinic, recording: recordingId, file: file.name, err: error.message }, 'recording export failed while streaming'));
      deps.logger.info({ clinic, recording: recordingId, file: file.name, actor: caller.sub }, 'recording exported');
      return {
        status: 200,
        headers: {
          'content-type': 'video/webm',
          'content-disposition': `attachment; filename="${recordingId}-${file.name}"`,
          'cache-control': 'private, no-store',
          'x-recording-bytes': String(file.plainBytes),
          'x-recording-sha256': file.plainSha256,
        },
        body: stream,
      };
    } catch (error) {
      if (!(error instanceof RecordingError)) throw error;
      if (error.code === 'RECORDING_CORRUPT') deps.logger.error({ clinic, recording: recordingId, detail: error.detail }, 'recording failed its integrity check on export');
      if (error.code === 'RECORDING_METADATA_INVALID') deps.logger.error({ clinic, recording: recordingId, detail: error.detail }, 'recording metadata in Redis was altered: export refused');
      return errorResponse(error.code, error.detail);
    }
  };
}
