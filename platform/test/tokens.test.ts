import { describe, expect, it } from 'vitest';
import { jwtVerify } from 'jose';
import { signed, tampered, unsigned } from '@clinic-hub/test-kit/forged-tokens';
import { TEST_SECRET } from '@clinic-hub/test-kit/hub-node';
import { TokenError } from '../src/tokens/verifier.js';
import { TokenIssuer } from '../src/tokens/issuer.js';

const issuer = new TokenIssuer(TEST_SECRET);

async function refusal(token: unknown): Promise<string> {
  try {
    await issuer.verify(token);
  } catch (error) {
    expect(error).toBeInstanceOf(TokenError);
    return (error as TokenError).code;
  }
  throw new Error('expected the token to be refused');
}

describe('TokenIssuer', () => {
  it('speaks standard JWT: accepts a token made by jose, and jose accepts ours', async () => {
    const fromJose = await signed({ sub: 'screen-9', role: 'display', clinic: 'testclinic' });
    expect(await issuer.verify(fromJose)).toMatchObject({ sub: 'screen-9', role: 'display', clinic: 'testclinic' });
    const { token } = await issuer.issue({ sub: 'staff-1', role: 'staff', clinic: 'testclinic' }, 600);
    const { payload, protectedHeader } = await jwtVerify(token, new TextEncoder().encode(TEST_SECRET), { issuer: 'clinic-hub', algorithms: ['HS256'] });
    expect(protectedHeader.alg).toBe('HS256');
    expect(payload).toMatchObject({ sub: 'staff-1', role: 'staff', clinic: 'testclinic' });
  });

  it('issues tokens that verify to the same claims and expiry', async () => {
    const before = Date.now();
    const { token, expiresAt } = await issuer.issue({ sub: 'screen-1', role: 'display', clinic: 'testclinic' }, 600);
    expect(expiresAt).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + 600_000);
    expect(expiresAt).toBeLessThanOrEqual(before + 601_000);
    const claims = await issuer.verify(token);
    expect(claims).toEqual({
      sub: 'screen-1',
      role: 'display',
      clinic: 'testclinic',
      exp: expiresAt / 1000,
      iat: expect.any(Number),
      jti: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/),
      sid: claims.jti,
      authTime: claims.iat,
    });
  });

  it('gives every token its own id, and a refreshed token its session’s id and start', async () => {
    const first = await issuer.issue({ sub: 'staff-1', role: 'staff', clinic: 'testclinic' }, 600);
    const other = await issuer.issue({ sub: 'staff-1', role: 'staff', clinic: 'testclinic' }, 600);
    expect(first.id).not.toBe(other.id);
    const original = await issuer.verify(first.token);
    expect(original).toMatchObject({ jti: first.id, sid: first.id });
    const refreshed = await issuer.issue({ sub: 'staff-1', role: 'staff', clinic: 'testclinic' }, 600, { sid: first.id, authTime: original.authTime - 100 });
    expect(await issuer.verify(refreshed.token)).toMatchObject({ jti: refreshed.id, sid: first.id, authTime: original.authTime - 100 });
  });

  it('reads tokens without ids (made elsewhere): the session starts at iat', async () => {
    const claims = await issuer.verify(await signed({ sub: 'screen-9', role: 'display', clinic: 'testclinic' }));
    expect(claims.jti).toBeUndefined();
    expect(claims.authTime).toBe(claims.iat);
  });

  it('carries the ticket of a patient token', async () => {
    const { token } = await issuer.issue({ sub: 'patient:t1', role: 'patient', clinic: 'testclinic', ticket: 't1' }, 60);
    expect(await issuer.verify(token)).toMatchObject({ role: 'patient', ticket: 't1' });
  });

  it('refuses an expired token with AUTH_EXPIRED', async () => {
    const { token } = await issuer.issue({ sub: 's', role: 'staff', clinic: 'testclinic' }, -1);
    expect(await refusal(token)).toBe('AUTH_EXPIRED');
    expect(await refusal(await signed({ role: 'staff', clinic: 'testclinic', exp: Math.floor(Date.now() / 1000) - 3600 }))).toBe('AUTH_EXPIRED');
  });

  it('refuses a missing token with AUTH_REQUIRED', async () => {
    for (const token of [undefined, null, '', 42, { token: 'x' }]) expect(await refusal(token)).toBe('AUTH_REQUIRED');
  });

  it('refuses forgeries with AUTH_INVALID', async () => {
    const { token: genuine } = await issuer.issue({ sub: 's', role: 'display', clinic: 'testclinic' }, 600);
    const forgeries = {
      'another secret': await signed({ role: 'admin', clinic: 'testclinic' }, { secret: 'x'.repeat(40) }),
      'payload edited after signing': tampered(genuine, { role: 'admin' }),
      'alg none': unsigned({ role: 'admin', clinic: 'testclinic' }),
      'HS512 with the right secret': await signed({ role: 'admin', clinic: 'testclinic' }, { alg: 'HS512' }),
      'another issuer': await signed({ role: 'admin', clinic: 'testclinic', iss: 'elsewhere' }),
      'unknown role': await signed({ role: 'root', clinic: 'testclinic' }),
      'no clinic': await signed({ role: 'staff' }),
      'signature cut off': genuine.slice(0, genuine.lastIndexOf('.') + 1),
      garbage: 'garbage',
      'too long': 'a'.repeat(5000),
    };
    for (const [what, token] of Object.entries(forgeries)) expect(await refusal(token), what).toBe('AUTH_INVALID');
  });

  it('allows clinic "*" for admin and service only, when issuing and when verifying', async () => {
    for (const role of ['admin', 'service'] as const) {
      const { token } = await issuer.issue({ sub: role, role, clinic: '*' }, 60);
      expect(await issuer.verify(token)).toMatchObject({ role, clinic: '*' });
    }
    for (const role of ['staff', 'doctor', 'patient', 'display'] as const) {
      await expect(issuer.issue({ sub: role, role, clinic: '*' }, 60)).rejects.toThrow(/admin and service/);
      expect(await refusal(await signed({ role, clinic: '*', ticket: 't1' })), role).toBe('AUTH_INVALID');
    }
  });

  it('refuses to issue claims that do not fit the schema', async () => {
    await expect(issuer.issue({ sub: '', role: 'staff', clinic: 'testclinic' }, 60)).rejects.toThrow();
    await expect(issuer.issue({ sub: 's', role: 'king' as never, clinic: 'testclinic' }, 60)).rejects.toThrow();
  });
});
