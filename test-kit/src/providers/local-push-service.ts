import { createECDH, createPublicKey, hkdfSync, randomBytes, createDecipheriv, verify, type ECDH } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:https';
import { Agent } from 'node:https';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../tmp.js';

export interface ReceivedPush {
  subscription: string;
  ttl: number;
  urgency: string | null;
  /** The VAPID JWT's claims, once its signature verified with the `k` key. */
  vapid: { aud: string; exp: number; sub: string; publicKey: string };
  /** The decrypted message. */
  plaintext: string;
}

interface Registration {
  ecdh: ECDH;
  auth: Buffer;
  /** What the service answers: 201 (accepted) or e.g. 410 (the browser unsubscribed). */
  status: number;
}

const b64u = (buffer: Buffer) => buffer.toString('base64url');

/**
 * A local push service speaking the Web Push protocol (RFC 8030) over HTTPS,
 * as browsers' push services do: `subscribe()` makes a subscription the way
 * a browser would (its own P-256 key pair and auth secret; the endpoint is
 * here), and each POST to an endpoint must carry a VAPID authorization
 * (RFC 8292: an ES256 JWT whose `aud` is this origin, verified with `k`),
 * a TTL and an aes128gcm body (RFC 8188), which it decrypts with the
 * subscription's private key and auth secret (RFC 8291). Bad requests are
 * answered 400/401/403 as push services do and recorded in `refused`.
 */
export class LocalPushService {
  readonly received: ReceivedPush[] = [];
  readonly refused: { subscription: string; status: number; reason: string }[] = [];
  origin = '';
  /** An HTTPS agent that trusts this service's self-signed certificate (pass it to the sender). */
  agent: Agent | null = null;
  private server: Server | null = null;
  private cleanupDir: () => void = () => undefined;
  private readonly registrations = new Map<string, Registration>();

  /**
   * The notification worker's Web Push settings (NOTIFY_WEB_PUSH_*) with these
   * VAPID keys and subject, sending to this service (and `otherHosts`).
   */
  env(vapid: { publicKey: string; privateKey: string }, subject: string, otherHosts: string[] = []): Record<string, string> {
    return {
      NOTIFY_WEB_PUSH_VAPID_PUBLIC_KEY: vapid.publicKey,
      NOTIFY_WEB_PUSH_VAPID_PRIVATE_KEY: vapid.privateKey,
      NOTIFY_WEB_PUSH_SUBJECT: subject,
      NOTIFY_WEB_PUSH_ENDPOINT_HOSTS: [new URL(this.origin).host, ...otherHosts].join(','),
    };
  }

  async start(): Promise<this> {
    const temp = tempDir('push-service-');
    this.cleanupDir = temp.cleanup;
    const dir = temp.dir;
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const certPem = readFileSync(cert);
    this.agent = new Agent({ ca: certPem, keepAlive: false });
    this.server = createServer({ key: readFileSync(key), cert: certPem }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const id = /^\/push\/([A-Za-z0-9_-]+)$/.exec(req.url ?? '')?.[1];
        const registration = id ? this.registrations.get(id) : undefined;
        const refuse = (status: number, reason: string) => {
          this.refused.push({ subscription: id ?? '', status, reason });
          res.writeHead(status, { 'content-type': 'text/plain' }).end(reason);
        };
        if (req.method !== 'POST' || !id || !registration) return refuse(404, 'no such subscription');
        if (registration.status !== 201) return refuse(registration.status, 'subscription expired');
        const ttl = Number(req.headers.ttl);
        if (!Number.isInteger(ttl) || ttl < 0) return refuse(400, 'TTL header missing');
        if (req.headers['content-encoding'] !== 'aes128gcm') return refuse(415, `content-encoding ${req.headers['content-encoding']}`);
        const vapid = this.checkVapid(req.headers.authorization ?? '');
        if (typeof vapid === 'string') return refuse(401, vapid);
        let plaintext: string;
        try {
          plaintext = decrypt(Buffer.concat(chunks), registration).toString('utf8');
        } catch (error) {
          return refuse(400, `cannot decrypt: ${(error as Error).message}`);
        }
        this.received.push({ subscription: id, ttl, urgency: (req.headers.urgency as string | undefined) ?? null, vapid, plaintext });
        res.writeHead(201, { location: `${this.origin}/message/${b64u(randomBytes(9))}` }).end();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    if (!address || typeof address === 'string') throw new Error('no address');
    this.origin = `https://127.0.0.1:${address.port}`;
    return this;
  }

  /** A new subscription, as `PushSubscription.toJSON()` gives it. */
  subscribe(): { id: string; subscription: { endpoint: string; expirationTime: null; keys: { p256dh: string; auth: string } } } {
    const id = b64u(randomBytes(12));
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const auth = randomBytes(16);
    this.registrations.set(id, { ecdh, auth, status: 201 });
    return { id, subscription: { endpoint: `${this.origin}/push/${id}`, expirationTime: null, keys: { p256dh: b64u(ecdh.getPublicKey()), auth: b64u(auth) } } };
  }

  /** From now on the endpoint answers `status` (410: the browser unsubscribed). */
  expire(id: string, status = 410): void {
    const registration = this.registrations.get(id);
    if (registration) registration.status = status;
  }

  receivedBy(id: string): ReceivedPush[] {
    return this.received.filter((push) => push.subscription === id);
  }

  async stop(): Promise<void> {
    this.agent?.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.cleanupDir();
  }

  private checkVapid(header: string): ReceivedPush['vapid'] | string {
    const match = /^vapid t=([^,\s]+),\s*k=([A-Za-z0-9_-]+)$/.exec(header);
    if (!match) return 'authorization is not "vapid t=…, k=…"';
    const [, jwt, k] = match as unknown as [string, string, string];
    const [header64, claims64, signature64] = jwt.split('.');
    if (!header64 || !claims64 || !signature64) return 'malformed JWT';
    const head = JSON.parse(Buffer.from(header64, 'base64url').toString()) as { alg?: string };
    if (head.alg !== 'ES256') return `alg ${head.alg}`;
    const point = Buffer.from(k, 'base64url');
    if (point.length !== 65 || point[0] !== 4) return 'k is not an uncompressed P-256 point';
    const publicKey = createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: b64u(point.subarray(1, 33)), y: b64u(point.subarray(33)) }, format: 'jwk' });
    const ok = verify('sha256', Buffer.from(`${header64}.${claims64}`), { key: publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.from(signature64, 'base64url'));
    if (!ok) return 'JWT signature does not verify with k';
    const claims = JSON.parse(Buffer.from(claims64, 'base64url').toString()) as { aud?: string; exp?: number; sub?: string };
    if (claims.aud !== this.origin) return `aud ${claims.aud} is not ${this.origin}`;
    const now = Date.now() / 1000;
    if (typeof claims.exp !== 'number' || claims.exp < now || claims.exp > now + 24 * 3600) return 'exp not within 24 hours';
    if (typeof claims.sub !== 'string' || !/^(mailto:|https:)/.test(claims.sub)) return 'sub is not mailto: or https:';
    return { aud: claims.aud, exp: claims.exp, sub: claims.sub, publicKey: k };
  }
}

/** RFC 8291 over RFC 8188: one aes128gcm record, keyed from ECDH with the sender's key in the header and the auth secret. */
function decrypt(body: Buffer, registration: Registration): Buffer {
  const salt = body.subarray(0, 16);
  const recordSize = body.readUInt32BE(16);
  const idLength = body[20]!;
  const senderPublic = body.subarray(21, 21 + idLength);
  const records = body.subarray(21 + idLength);
  if (idLength !== 65) throw new Error(`keyid of ${idLength} bytes, not a P-256 key`);
  if (records.length > recordSize) throw new Error('more than one record');
  const shared = registration.ecdh.computeSecret(senderPublic);
  const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0'), registration.ecdh.getPublicKey(), senderPublic]);
  const ikm = Buffer.from(hkdfSync('sha256', shared, registration.auth, keyInfo, 32));
  const cek = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0'), 16));
  const nonce = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: nonce\0'), 12));
  const decipher = createDecipheriv('aes-128-gcm', cek, nonce);
  decipher.setAuthTag(records.subarray(records.length - 16));
  const padded = Buffer.concat([decipher.update(records.subarray(0, records.length - 16)), decipher.final()]);
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end--;
  if (padded[end] !== 2) throw new Error('last record lacks its 0x02 delimiter');
  return padded.subarray(0, end);
}
