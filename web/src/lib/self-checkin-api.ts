/**
 * The hub's self check-in over HTTP (docs/protocol.md, "Self check-in"): what
 * the kiosk and phone pages show before a check-in, and the phone's check-in.
 */
import type { Ack, ProtocolError, SelfCheckinBody, SelfCheckinInfo, SelfCheckinResult } from '@clinic-hub/protocol';

const path = (clinic: string) => `/api/clinics/${encodeURIComponent(clinic)}/self-checkin`;

async function answer<T extends object>(res: Response): Promise<Ack<T>> {
  const body = (await res.json().catch(() => null)) as ({ error?: ProtocolError } & T) | null;
  if (res.ok && body) return { ok: true, ...body };
  return { ok: false, error: body?.error ?? { code: 'INTERNAL', message: `HTTP ${res.status}` } };
}

/** With a kiosk token, or `{ poster }` / `{ code }` from a phone. */
export async function fetchSelfCheckinInfo(
  clinic: string,
  access: { token: string } | { poster: string } | { code: string },
): Promise<Ack<SelfCheckinInfo & { appointment?: { startsAt: number; dept: string } }>> {
  const query = 'token' in access ? '' : 'poster' in access ? `?poster=${encodeURIComponent(access.poster)}` : `?code=${encodeURIComponent(access.code)}`;
  try {
    const res = await fetch(`${path(clinic)}${query}`, 'token' in access ? { headers: { authorization: `Bearer ${access.token}` } } : {});
    return await answer(res);
  } catch {
    return { ok: false, error: { code: 'STORE_UNAVAILABLE', message: 'no answer from the hub' } };
  }
}

export async function postSelfCheckin(clinic: string, body: SelfCheckinBody, token?: string): Promise<Ack<SelfCheckinResult>> {
  const res = await fetch(path(clinic), {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  return answer(res);
}
