/**
 * An upload's body (up to HUB_ATTACHMENT_MAX_BYTES, megabytes) is read only
 * for a caller whose token holds: without one, or with a forged or revoked
 * one, the hub answers at once, before the body arrives, and closes the
 * connection. It used to read and hold the whole body first, so anyone
 * could make a node take in megabytes per request. Both servers (uWS and
 * Node HTTP), over a raw socket that sends the headers and a little of the
 * body, then waits.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHAT_ATTACHMENTS_PATH } from '@clinic-hub/protocol';
import { signed } from '@clinic-hub/test-kit/forged-tokens';
import { startHubProcess, tokenFor, type HubNodeProcess } from '@clinic-hub/test-kit/hub-node';
import { startTestRedis, type TestRedis } from '@clinic-hub/test-kit/redis';

/** Sends the request line, headers and the first `sent` bytes of a `length`-byte body; resolves with what came back before the connection closed (or after `waitMs`). */
function partialUpload(url: string, authorization: string | null, length: number, sent: number, waitMs: number): Promise<{ response: string; closed: boolean }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    let response = '';
    const done = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ response, closed });
    };
    const timer = setTimeout(() => done(false), waitMs);
    socket.on('data', (chunk) => (response += chunk.toString('latin1')));
    socket.on('close', () => done(true));
    socket.on('error', () => undefined);
    socket.on('connect', () => {
      socket.write(
        `POST ${CHAT_ATTACHMENTS_PATH}?thread=patient.T1&name=x.png HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Type: image/png\r\n` +
          (authorization ? `Authorization: ${authorization}\r\n` : '') +
          `Content-Length: ${length}\r\n\r\n`,
      );
      socket.write(Buffer.alloc(sent, 1));
    });
  });
}

describe.each(['uws', 'node'] as const)('an upload on %s', (server) => {
  let redis: TestRedis;
  let hub: HubNodeProcess;

  beforeAll(async () => {
    redis = await startTestRedis();
    hub = await startHubProcess({ redisUrl: redis.url, nodeId: `upload-preflight-${server}`, server });
  }, 60_000);

  afterAll(async () => {
    await hub?.stop();
    await redis?.cleanup();
  });

  it.each([
    ['no token', null, 'AUTH_REQUIRED'],
    ['a token signed with another secret', 'forged', 'AUTH_INVALID'],
  ] as const)('with %s is refused before its body is read, and the connection closed', async (_what, credential, code) => {
    const authorization = credential === 'forged' ? `Bearer ${await signed({ role: 'patient', clinic: 'testclinic', ticket: 'T1' }, { secret: 'not-the-hub-secret-not-the-hub-secret' })}` : credential;
    // 4 MB announced, 16 KB sent: the answer cannot wait for the rest.
    const { response, closed } = await partialUpload(hub.url, authorization, 4_000_000, 16_384, 10_000);
    expect(response).toMatch(/^HTTP\/1\.1 401 /);
    expect(response).toContain(`"code":"${code}"`);
    expect(closed).toBe(true);
  });

  it('with a valid token is read to its end (the rest of the checks answer then)', async () => {
    const token = await tokenFor('patient', 'testclinic', { ticket: 'T-none' });
    const { response, closed } = await partialUpload(hub.url, `Bearer ${token}`, 4_000_000, 16_384, 1500);
    // Still waiting for the body it was promised: nothing answered, the connection open.
    expect(response).toBe('');
    expect(closed).toBe(false);
  });
});
