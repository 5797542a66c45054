import { randomBytes } from 'node:crypto';
import { LocalHttpProvider, json } from './http-provider.js';

export interface AcceptedSms {
  sid: string;
  to: string;
  from: string;
  body: string;
  idempotencyKey: string | null;
}

/**
 * A local SMS provider with a Twilio-style REST API:
 * POST /2010-04-01/Accounts/{AccountSid}/Messages.json, form fields To, From,
 * Body, HTTP basic auth AccountSid:AuthToken; 201 with the message resource
 * (`sid`, `status: "queued"`), errors as `{ code, message, status }`. An
 * `Idempotency-Key` seen before returns the first message (200) and sends
 * nothing.
 */
export class LocalSmsApi extends LocalHttpProvider {
  readonly accepted: AcceptedSms[] = [];
  private readonly byKey = new Map<string, AcceptedSms>();

  constructor(
    readonly accountSid: string,
    readonly authToken: string,
  ) {
    super((request, res) => {
      if (request.method !== 'POST' || request.path !== `/2010-04-01/Accounts/${this.accountSid}/Messages.json`) {
        return json(res, 404, { code: 20404, message: 'The requested resource was not found', status: 404 });
      }
      const expected = `Basic ${Buffer.from(`${this.accountSid}:${this.authToken}`).toString('base64')}`;
      if (request.headers.authorization !== expected) return json(res, 401, { code: 20003, message: 'Authenticate', status: 401 });
      const form = new URLSearchParams(request.body);
      const to = form.get('To');
      const from = form.get('From');
      const body = form.get('Body');
      if (!to || !/^\+[1-9]\d{6,14}$/.test(to)) return json(res, 400, { code: 21211, message: "The 'To' number is not a valid phone number.", status: 400 });
      if (!from || !body) return json(res, 400, { code: 21602, message: 'Message body and From are required.', status: 400 });
      const key = (request.headers['idempotency-key'] as string | undefined) ?? null;
      const previous = key ? this.byKey.get(key) : undefined;
      if (previous) return json(res, 200, resource(this.accountSid, previous));
      const message: AcceptedSms = { sid: `SM${randomBytes(16).toString('hex')}`, to, from, body, idempotencyKey: key };
      this.accepted.push(message);
      if (key) this.byKey.set(key, message);
      json(res, 201, resource(this.accountSid, message));
    });
  }
}

function resource(accountSid: string, m: AcceptedSms) {
  return { sid: m.sid, account_sid: accountSid, to: m.to, from: m.from, body: m.body, status: 'queued', num_segments: '1', api_version: '2010-04-01' };
}
